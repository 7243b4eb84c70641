"""The site's categories as the store has them: those of the live posts (published, not
drafts, as the last build left them; read by :func:`feedsvc.storage.digests.live_metas`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from feedsvc.newsletter.categories import SiteCategories
from feedsvc.storage.digests import live_metas


def site_categories(conn: Connection, now: datetime) -> SiteCategories:
    """The categories of the posts live at ``now``."""
    return SiteCategories.from_metas(live_metas(conn, now))
