"""Announcements: which live posts are new for the digests, recorded once per post id.

The build calls :func:`note_published` after it publishes; digest creation
(:mod:`.digests`) reads the rows. A flood of new posts at once is held until
``feedsvc digest release``. Kept apart from the digest queries so that a build imports
neither the subscriber nor the address-checking code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from feedsvc.models import PostMeta
from feedsvc.storage.bulk import execute_tuples, rows_among, upsert
from feedsvc.storage.schema import announcements

log = logging.getLogger("feedsvc.digests")

DEFAULT_FLOOD_LIMIT = 50


_ANNOUNCED = ("post_id", "source_path", "became_new_at", "held", "released_at", "eligible_at")


def is_flood(new_posts: int, flood_limit: int) -> bool:
    """More than ``flood_limit`` posts new at once (a permalink change, a bulk import)."""
    return new_posts > flood_limit


def note_published(
    conn: Connection,
    metas: Sequence[PostMeta],
    now: datetime,
    *,
    flood_limit: int = DEFAULT_FLOOD_LIMIT,
) -> list[str]:
    """Record the live posts never seen before as new; the ids that may now go out.

    Call after every build with the posts it published (drafts and future posts are
    ignored here anyway). A post already recorded is never new again, whatever its edits.
    More than ``flood_limit`` (``digest.flood_limit``) new posts at once are held instead,
    with a warning, until ``feedsvc digest release``; then nothing is returned.
    """
    # ``now`` in the zone object of the posts' dates: comparing datetimes that share one
    # is ~20x cheaper than across zones (see models.moment_of), and the answer the same.
    at = now.astimezone(metas[0].published.tzinfo) if metas else now
    live = {m.id: m for m in metas if not m.draft and m.published <= at}
    if not live:
        return []
    ids = sorted(live)
    known = _announced_among(conn, ids)
    new = [post_id for post_id in ids if post_id not in known]
    if not new:
        return []
    held = is_flood(len(new), flood_limit)
    eligible = None if held else now
    rows = [(post_id, live[post_id].source, now, held, None, eligible) for post_id in new]
    # Another process may record the same post at the same moment: the first one stays.
    statement = upsert(conn, announcements).on_conflict_do_nothing()
    execute_tuples(conn, statement, announcements, _ANNOUNCED, rows)
    if held:
        log.warning(
            "flood guard: %d posts became new at once (more than digest.flood_limit = %d; "
            "a permalink change or a bulk import?), e.g. %s; they are held and not emailed "
            "until `feedsvc digest release` (or `feedsvc digest release --discard` to never "
            "email them)",
            len(new),
            flood_limit,
            live[new[0]].source,
        )
        return []
    return new


def announce_first(
    conn: Connection, metas: Sequence[PostMeta], now: datetime, recorded: dict[str, str]
) -> None:
    """A new store's first build, as it goes: the live posts among ``metas`` recorded as
    new, never held (nobody subscribed yet is owed the back catalogue). ``recorded``
    collects each id's file; :func:`settle_first` mends the rows once duplicates are known.
    """
    at = now.astimezone(metas[0].published.tzinfo) if metas else now
    rows = []
    for meta in metas:
        if not meta.draft and meta.published <= at and meta.id not in recorded:
            recorded[meta.id] = meta.source
            rows.append((meta.id, meta.source, now, False, None, now))
    statement = upsert(conn, announcements).on_conflict_do_nothing()
    execute_tuples(conn, statement, announcements, _ANNOUNCED, rows)


def settle_first(
    conn: Connection, recorded: dict[str, str], published: Sequence[PostMeta], now: datetime
) -> list[str]:
    """After :func:`announce_first`: the rows of posts that lost to a duplicate go, an id
    kept by another file names that file. The ids announced, as ``note_published`` gives."""
    kept = {meta.id: meta.source for meta in published}
    lost = [post_id for post_id in recorded if post_id not in kept]
    if lost:
        conn.execute(delete(announcements).where(announcements.c.post_id.in_(lost)))
    announce_first(conn, [m for m in published if m.id not in recorded], now, recorded)
    for post_id, source in kept.items():
        if recorded[post_id] != source:
            conn.execute(
                update(announcements)
                .where(announcements.c.post_id == post_id)
                .values(source_path=source)
            )
    return sorted(kept)


def any_announced(conn: Connection) -> bool:
    """Whether any post was ever announced (false before a store's first build)."""
    return conn.execute(select(announcements.c.post_id).limit(1)).first() is not None


def _announced_among(conn: Connection, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` were announced before."""
    query = select(announcements.c.post_id)
    return {row[0] for row in rows_among(conn, query, announcements.c.post_id, ids)}


@dataclass(frozen=True, slots=True)
class HeldPost:
    post_id: str
    source_path: str
    became_new_at: datetime


def held_posts(conn: Connection) -> list[HeldPost]:
    """Posts the flood guard holds, oldest first."""
    query = (
        select(announcements.c.post_id, announcements.c.source_path, announcements.c.became_new_at)
        .where(announcements.c.held.is_(True))
        .order_by(announcements.c.became_new_at, announcements.c.source_path)
    )
    return [HeldPost(*row) for row in conn.execute(query)]


def release_held(conn: Connection, now: datetime, *, discard: bool = False) -> list[HeldPost]:
    """Release every held post: new as of ``now`` (or, with ``discard``, never emailed)."""
    held = held_posts(conn)
    if held:
        conn.execute(
            update(announcements)
            .where(announcements.c.held.is_(True))
            .values(held=False, released_at=now, eligible_at=None if discard else now)
        )
    return held
