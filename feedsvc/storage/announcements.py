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
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from feedsvc.errors import NotArchived
from feedsvc.models import Message, PostMeta
from feedsvc.storage.bulk import execute_tuples, rows_among, upsert
from feedsvc.storage.schema import announcements, posts, subscribers

log = logging.getLogger("feedsvc.digests")

DEFAULT_FLOOD_LIMIT = 50


_ANNOUNCED = (
    "post_id",
    "source_path",
    "became_new_at",
    "held",
    "released_at",
    "eligible_at",
    "archived",
)
_LOGGED_ARCHIVE = 10  # archive posts named one by one in the log; the rest counted


def is_flood(new_posts: int, flood_limit: int) -> bool:
    """More than ``flood_limit`` posts new at once (a permalink change, a bulk import)."""
    return new_posts > flood_limit


def is_backdated(published: datetime, live_at: datetime, backdate_limit: timedelta) -> bool:
    """Dated more than ``backdate_limit`` (``digest.backdate_limit``; 0: never) before the
    moment it went live: an archive post, published in the feeds but mailed to nobody."""
    return backdate_limit > timedelta(0) and published < live_at - backdate_limit


def archive_note(published: datetime, live_at: datetime) -> Message:
    """Why an archive post is not mailed, as status, the dry run and the log say it."""
    return Message.counted(
        "archive.not_mailed",
        (
            "not mailed: dated %(count)s day before it went live; see digest.backdate_limit "
            "(`feedsvc digest release POST` mails it)",
            "not mailed: dated %(count)s days before it went live; see digest.backdate_limit "
            "(`feedsvc digest release POST` mails it)",
        ),
        (live_at - published).days,
    )


def note_published(
    conn: Connection,
    metas: Sequence[PostMeta],
    now: datetime,
    *,
    flood_limit: int = DEFAULT_FLOOD_LIMIT,
    backdate_limit: timedelta = timedelta(0),
) -> list[str]:
    """Record the live posts never seen before as new; the ids that may now go out.

    Call after every build with the posts it published (drafts and future posts are
    ignored here anyway). A post already recorded is never new again, whatever its edits.
    A post dated more than ``backdate_limit`` before ``now`` is an archive post: recorded,
    never mailed unless released. More than ``flood_limit`` (``digest.flood_limit``) other
    new posts at once are held instead, with a warning, until ``feedsvc digest release``;
    then nothing is returned.
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
    archive = [i for i in new if is_backdated(live[i].published, at, backdate_limit)]
    archived = set(archive)
    fresh = [i for i in new if i not in archived]
    held = is_flood(len(fresh), flood_limit)
    eligible = None if held else now
    rows = [(i, live[i].source, now, held, None, eligible, False) for i in fresh]
    rows += [(i, live[i].source, now, False, None, None, True) for i in archive]
    # Another process may record the same post at the same moment: the first one stays.
    statement = upsert(conn, announcements).on_conflict_do_nothing()
    execute_tuples(conn, statement, announcements, _ANNOUNCED, rows)
    _log_archive([live[i] for i in archive], at)
    if held:
        log.warning(
            "flood guard: %d posts became new at once (more than digest.flood_limit = %d; "
            "a permalink change or a bulk import?), e.g. %s; they are held and not emailed "
            "until `feedsvc digest release` (or `feedsvc digest release --discard` to never "
            "email them)",
            len(fresh),
            flood_limit,
            live[fresh[0]].source,
        )
        return []
    return fresh


def _log_archive(archive: Sequence[PostMeta], at: datetime) -> None:
    for meta in archive[:_LOGGED_ARCHIVE]:
        log.warning("%s: %s", meta.source, archive_note(meta.published, at))
    if len(archive) > _LOGGED_ARCHIVE:
        log.warning(
            "%d more archive posts are not mailed (see `feedsvc status`)",
            len(archive) - _LOGGED_ARCHIVE,
        )


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
            rows.append((meta.id, meta.source, now, False, None, now, False))
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


def any_subscriber(conn: Connection) -> bool:
    """Whether anyone ever subscribed (whatever their status now)."""
    return conn.execute(select(subscribers.c.id).limit(1)).first() is not None


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


@dataclass(frozen=True, slots=True)
class ArchivePost:
    """A post that went live back-dated (``digest.backdate_limit``) and is not mailed."""

    post_id: str
    source_path: str
    published: datetime | None  # the date it carried (None: its file is gone)
    went_live: datetime

    @property
    def note(self) -> Message:
        return archive_note(self.published or self.went_live, self.went_live)


def archive_posts(conn: Connection, *, since: datetime | None = None) -> list[ArchivePost]:
    """Archive posts not released, newest first (``since``: went live at or after)."""
    query = (
        select(
            announcements.c.post_id,
            announcements.c.source_path,
            posts.c.published,
            announcements.c.became_new_at,
        )
        .outerjoin(posts, posts.c.source_path == announcements.c.source_path)
        .where(announcements.c.archived.is_(True), announcements.c.released_at.is_(None))
        .order_by(announcements.c.became_new_at.desc(), announcements.c.source_path)
    )
    if since is not None:
        query = query.where(announcements.c.became_new_at >= since)
    return [ArchivePost(*row) for row in conn.execute(query)]


def release_archived(conn: Connection, refs: Sequence[str], now: datetime) -> list[ArchivePost]:
    """Release the archive posts named by ``refs`` (their file as `feedsvc status` shows
    it, or their id/URL): new as of ``now``, so the next digests carry them. Raises
    :class:`NotArchived` naming the first ref that is not one, releasing nothing."""
    waiting = archive_posts(conn)
    by_ref = {p.source_path: p for p in waiting} | {p.post_id: p for p in waiting}
    chosen: dict[str, ArchivePost] = {}
    for ref in refs:
        found = by_ref.get(ref) or by_ref.get(ref.removeprefix("./"))
        if found is None:
            raise NotArchived(ref)
        chosen[found.post_id] = found
    ids = sorted(chosen)
    conn.execute(
        update(announcements)
        .where(announcements.c.post_id.in_(ids))
        .values(released_at=now, eligible_at=now)
    )
    return [chosen[i] for i in ids]
