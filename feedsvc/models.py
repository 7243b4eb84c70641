"""Plain frozen values that flow through the pipeline. No I/O, no imports of ours."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any, Literal, NamedTuple


@dataclass(frozen=True, slots=True)
class Author:
    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    """A post's picture: an absolute URL, its media type, and its size where the file is local."""

    url: str
    media_type: str | None = None
    length: int | None = None


DateSource = Literal["front_matter", "file_name", "first_seen"]


@dataclass(frozen=True, slots=True)
class PostMeta:
    """What a source file says about a post, before its body is rendered.

    ``id`` is stable: the front matter ``id`` if given, else the absolute permalink URL.
    ``source`` is the path below the content folder, with ``/`` separators.
    """

    id: str
    slug: str
    url: str
    source: str
    title: str
    published: datetime
    updated: datetime
    date_source: DateSource
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    author: Author | None = None
    lang: str | None = None
    image: Image | None = None
    excerpt: str | None = None
    draft: bool = False
    # The content.order_by key's value: orders posts published at the same moment.
    order: float | str | None = None

    @property
    def id_is_url(self) -> bool:
        """True when the id is the permalink (an RSS ``guid isPermaLink="true"``)."""
        return self.id == self.url


@dataclass(frozen=True, slots=True)
class Post:
    """A post ready for feeds and email: metadata, its HTML as feeds carry it (sanitised,
    absolute URLs, XML-clean; email narrows it further), plain summary."""

    meta: PostMeta
    html: str
    summary: str


@dataclass(frozen=True, slots=True)
class Message:
    """A text for people kept as its catalogue id and values until it is shown, for code
    that must not read the catalogue (the pure core, the store): ``str()`` gives the
    English (logs, JSON, the store), :meth:`feedsvc.messages.Texts.message` any language.
    ``english`` is the template as ``en.po`` holds it (a test keeps the two the same); a
    value may be a Message itself, shown in the same language.

    ``Message.of("store.created", "created a new store at revision %(head)s", head="0010")``;
    ``Message.counted("id", ("%(count)s day", "%(count)s days"), 3)`` counts, as
    ``Texts.plural`` does (``id.plural`` is its plural id).
    """

    id: str
    english: str | tuple[str, str]  # one form, or the singular and plural
    values: tuple[tuple[str, object], ...] = ()
    count: int | None = None

    @classmethod
    def of(cls, message_id: str, english: str, **values: object) -> Message:
        return cls(message_id, english, tuple(values.items()))

    @classmethod
    def counted(
        cls, message_id: str, english: tuple[str, str], count: int, **values: object
    ) -> Message:
        return cls(message_id, english, tuple(values.items()), count)

    def template(self) -> str:
        """The English template this message takes (its form for :attr:`count`)."""
        if isinstance(self.english, str):
            return self.english
        return self.english[0] if self.count == 1 else self.english[1]

    def fill(self, template: str, shown: Callable[[Message], str]) -> str:
        """``template`` with this message's values, nested messages as ``shown`` gives them."""
        values: dict[str, object] = {
            name: shown(value) if isinstance(value, Message) else value
            for name, value in self.values
        }
        if self.count is not None:
            values = {"num": self.count, "count": f"{self.count:,}", **values}
        return template % values

    def __str__(self) -> str:
        return self.fill(self.template(), str)

    def to_data(self) -> dict[str, object]:
        """A JSON-ready form (the store keeps a problem's message this way)."""
        data: dict[str, object] = {
            "id": self.id,
            "english": list(self.english) if isinstance(self.english, tuple) else self.english,
            "values": [
                [name, value.to_data() if isinstance(value, Message) else value]
                for name, value in self.values
            ],
        }
        if self.count is not None:
            data["count"] = self.count
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Message:
        """The message :meth:`to_data` gave."""
        english = data["english"]
        values = tuple(
            (str(name), cls.from_data(value) if isinstance(value, dict) else value)
            for name, value in data["values"]
        )
        shape = (english[0], english[1]) if isinstance(english, list) else str(english)
        return cls(str(data["id"]), shape, values, data.get("count"))


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one source file (or the config), for `check`, logs and `status`."""

    path: str
    reason: str  # in English (logs, JSON, the store)
    line: int | None = None
    severity: Severity = Severity.ERROR
    # The reason as catalogue id and values, for the command line to show in its language;
    # None for a reason only in English (written by code that has no message for it).
    message: Message | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        path: str,
        message: Message,
        line: int | None = None,
        severity: Severity = Severity.ERROR,
    ) -> Problem:
        """A problem whose reason is ``message`` (its English as :attr:`reason`)."""
        return cls(path, str(message), line, severity, message)

    def __str__(self) -> str:
        """``path:line: severity: reason``; a reason of several lines keeps the
        ``path:line:`` prefix on each (editors and grep read one problem per line)."""
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        text = f"{where}: {self.severity}: {self.reason}"
        if "\n" not in self.reason and "\r" not in self.reason:
            return text
        return f"\n{where}: ".join(text.splitlines())


def meta_to_dict(meta: PostMeta) -> dict[str, object]:
    """A JSON-ready mapping of ``meta`` (the store caches parsed metadata this way)."""
    return {
        "id": meta.id,
        "slug": meta.slug,
        "url": meta.url,
        "source": meta.source,
        "title": meta.title,
        "published": meta.published.isoformat(),
        "updated": meta.updated.isoformat(),
        "date_source": meta.date_source,
        "categories": list(meta.categories),
        "tags": list(meta.tags),
        "author": None if meta.author is None else [meta.author.name, meta.author.email],
        "lang": meta.lang,
        "image": None
        if meta.image is None
        else [meta.image.url, meta.image.media_type, meta.image.length],
        "excerpt": meta.excerpt,
        "draft": meta.draft,
        **({} if meta.order is None else {"order": meta.order}),
    }


def meta_from_dict(data: dict[str, object]) -> PostMeta:
    """The inverse of :func:`meta_to_dict`."""
    author = data.get("author")
    image = data.get("image")
    return PostMeta(
        id=str(data["id"]),
        slug=str(data["slug"]),
        url=str(data["url"]),
        source=str(data["source"]),
        title=str(data["title"]),
        published=moment_of(str(data["published"])),
        updated=moment_of(str(data["updated"])),
        date_source=data["date_source"],  # type: ignore[arg-type]
        categories=tuple(data.get("categories") or ()),  # type: ignore[arg-type]
        tags=tuple(data.get("tags") or ()),  # type: ignore[arg-type]
        author=None if not author else Author(*author),  # type: ignore[misc]
        lang=data.get("lang"),  # type: ignore[arg-type]
        image=None if not image else Image(*image),  # type: ignore[misc]
        excerpt=data.get("excerpt"),  # type: ignore[arg-type]
        draft=bool(data.get("draft")),
        order=data.get("order"),  # type: ignore[arg-type]
    )


# PostMeta flattened to plain str/int/bool/None/tuples, dates as ISO text: what parse
# workers send the main process (pickled; unpickling these is ~3x cheaper than JSON, and
# rebuilding from them ~3x cheaper than ``meta_from_dict``). Same order as meta_to_dict.
MetaFields = tuple[
    str,  # id
    str,  # slug
    str,  # url
    str,  # source
    str,  # title
    str,  # published, ISO 8601
    str,  # updated, ISO 8601
    DateSource,
    tuple[str, ...],  # categories
    tuple[str, ...],  # tags
    tuple[str, str | None] | None,  # author: name, email
    str | None,  # lang
    tuple[str, str | None, int | None] | None,  # image: url, media type, length
    str | None,  # excerpt
    bool,  # draft
    float | str | None,  # order
]


def meta_fields(meta: PostMeta) -> MetaFields:
    """``meta`` as :data:`MetaFields`; the inverse is :func:`meta_from_fields`."""
    author, image = meta.author, meta.image
    published = meta.published.isoformat()
    # to_meta keeps the very same object when nothing says otherwise: format it once.
    updated = published if meta.updated is meta.published else meta.updated.isoformat()
    return (
        meta.id,
        meta.slug,
        meta.url,
        meta.source,
        meta.title,
        published,
        updated,
        meta.date_source,
        meta.categories,
        meta.tags,
        None if author is None else (author.name, author.email),
        meta.lang,
        None if image is None else (image.url, image.media_type, image.length),
        meta.excerpt,
        meta.draft,
        meta.order,
    )


def meta_from_fields(fields: MetaFields) -> PostMeta:
    """The PostMeta that ``meta_from_dict`` would rebuild from the same metadata's JSON.

    Dates come back with fixed UTC offsets, as from the store, whatever zone they had.
    """
    (id_, slug, url, source, title, published, updated, date_source) = fields[:8]
    author, image = fields[10], fields[12]
    moment = moment_of(published)
    return PostMeta(
        id_,
        slug,
        url,
        source,
        title,
        moment,
        moment if updated == published else moment_of(updated),
        date_source,
        fields[8],
        fields[9],
        None if author is None else Author(*author),
        fields[11],
        None if image is None else Image(*image),
        fields[13],
        fields[14],
        fields[15],
    )


def meta_json_from_fields(fields: MetaFields) -> str:
    """``json.dumps(meta_to_dict(meta), ensure_ascii=False)``, byte for byte, 2x faster.

    The store keeps this text and compares it to see whether a post's metadata changed,
    so it must not drift from ``meta_to_dict``: the tests hold them together.
    """
    text = encode_basestring  # the C function json.dumps(..., ensure_ascii=False) calls
    author, image = fields[10], fields[12]
    author_json = "null" if author is None else f"[{text(author[0])}, {_json_or_null(author[1])}]"
    if image is None:
        image_json = "null"
    else:
        length = "null" if image[2] is None else int.__repr__(image[2])
        image_json = f"[{text(image[0])}, {_json_or_null(image[1])}, {length}]"
    return (
        f'{{"id": {text(fields[0])}, "slug": {text(fields[1])}, "url": {text(fields[2])}, '
        f'"source": {text(fields[3])}, "title": {text(fields[4])}, '
        f'"published": {text(fields[5])}, "updated": {text(fields[6])}, '
        f'"date_source": {text(fields[7])}, "categories": {_json_list(fields[8])}, '
        f'"tags": {_json_list(fields[9])}, "author": {author_json}, '
        f'"lang": {_json_or_null(fields[11])}, "image": {image_json}, '
        f'"excerpt": {_json_or_null(fields[13])}, "draft": {"true" if fields[14] else "false"}'
        f"{_json_order(fields[15])}}}"
    )


def _json_order(order: float | str | None) -> str:
    """The "order" member, only where there is one (the JSON of other posts is unchanged)."""
    if order is None:
        return ""
    if isinstance(order, str):
        return f', "order": {encode_basestring(order)}'
    return f', "order": {float.__repr__(order) if isinstance(order, float) else int(order)}'


def _json_or_null(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _json_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(map(encode_basestring, values)) + "]"


class SubscriberStatus(StrEnum):
    """Where a subscriber stands. The last three are "stopped": nothing is sent to them."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"

    @property
    def stopped(self) -> bool:
        """True for an address that left or cannot receive mail; imports never revive it."""
        return self in _STOPPED


_STOPPED = frozenset(
    {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED}
)


class Frequency(StrEnum):
    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


DEFAULT_FREQUENCY = Frequency.DAILY


class SubscriberEventKind(StrEnum):
    """What happened to a subscriber (the ``subscriber_events`` table)."""

    SUBSCRIBED = "subscribed"
    CONFIRMED = "confirmed"
    UPDATED = "updated"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    UNBOUNCED = "unbounced"  # `feedsvc subscribers unbounce`: back to active
    COMPLAINED = "complained"
    IMPORTED = "imported"
    FORGOTTEN = "forgotten"


class SignalKind(StrEnum):
    """What mail that came back, or a provider's webhook, says about a subscriber."""

    HARD_BOUNCE = "hard_bounce"  # the address does not take mail
    SOFT_BOUNCE = "soft_bounce"  # a failure that may pass (full mailbox, policy block …)
    COMPLAINT = "complaint"  # marked as spam
    UNSUBSCRIBE = "unsubscribe"  # mail to the List-Unsubscribe mailto address
    IGNORED = "ignored"  # auto-replies, delays, anything that is not a signal


class SignalOutcome(StrEnum):
    """What a signal did (``inbound_signals.outcome``)."""

    BOUNCED = "bounced"  # the subscriber is bounced now
    COUNTED = "counted"  # a bounce that counts, below its limit
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    NO_CHANGE = "no_change"  # about a subscriber already stopped
    UNMATCHED = "unmatched"  # no subscriber found for it: kept for the site owner
    IGNORED = "ignored"
    ALREADY = "already"  # read before (the same message or event): changed nothing


@dataclass(frozen=True, slots=True)
class InboundSignal:
    """One bounce, complaint or unsubscribe that arrived after the relay said 250.
    ``key`` names it once and for all (the message's hash, the provider's event id)."""

    key: str
    source: str  # dsn, arf, body, auto-reply, other, mailto, ses, postmark, sendgrid, mailgun
    kind: SignalKind
    subscriber_id: int | None = None
    delivery_id: int | None = None
    status: str | None = None  # enhanced status code, "5.1.1"
    diagnostic: str | None = None


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A stored subscriber.

    ``email`` is normalised (see ``feedsvc.newsletter.subscribers.normalise_address``) and lower
    case,
    so it is unique case-insensitively. ``categories`` empty means every category;
    ``timezone`` None means the site's. ``confirmed`` is when the subscriber confirmed by
    email (None for addresses added by the site owner or imported without that date).
    """

    id: int
    email: str
    name: str | None
    status: SubscriberStatus
    frequency: Frequency
    categories: tuple[str, ...]
    timezone: str | None
    created: datetime
    confirmed: datetime | None
    unsubscribed: datetime | None
    consent_source: str | None
    consent_ip: str | None


@dataclass(frozen=True, slots=True)
class SubscriberInput:
    """One subscriber to add or update, from a CSV row (``line``) or the command line.

    Dates are None where not given: the store fills ``created`` with the time of the
    import, and ``unsubscribed`` with it when the status is unsubscribed.
    """

    email: str
    name: str | None = None
    frequency: Frequency = DEFAULT_FREQUENCY
    categories: tuple[str, ...] = ()
    timezone: str | None = None
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    created: datetime | None = None
    confirmed: datetime | None = None
    unsubscribed: datetime | None = None
    consent_source: str | None = None
    consent_ip: str | None = None
    line: int | None = None


_ZONES: dict[object, tzinfo] = {}  # UTC offset → the one fixed-offset zone object for it


def moment_of(text: str) -> datetime:
    """``datetime.fromisoformat``, with one shared tzinfo object per UTC offset.

    Comparing or sorting datetimes whose tzinfo is the same object is ~20x cheaper than
    across distinct (even equal) zone objects, and a site's posts share a handful of
    offsets: the daemon compares and sorts every post's date on each build.
    """
    moment = datetime.fromisoformat(text)
    zone = moment.tzinfo
    if zone is None:
        return moment
    shared = _ZONES.setdefault(zone.utcoffset(None), zone)
    return moment if shared is zone else moment.replace(tzinfo=shared)


# --- digests and deliveries: what a digest run plans and the store keeps ----------------


class DeliveryStatus(StrEnum):
    """Where one recipient's message stands (the ``deliveries`` table)."""

    PENDING = "pending"  # created; message bytes may not be rendered yet
    SENDING = "sending"  # claimed by a sender (``lease_until`` says until when)
    SENT = "sent"
    RETRY = "retry"  # a temporary failure; tried again at ``next_attempt_at``
    FAILED = "failed"  # a permanent failure
    CANCELLED = "cancelled"  # the subscriber left before it went out


@dataclass(frozen=True, slots=True)
class Period:
    """The stretch of time one digest covers; ``end`` is when it goes out.

    ``key`` names it in the store, e.g. ``daily:2024-06-01@Asia/Seoul`` (the local date
    it goes out) or ``immediate:2024-06-01T08:00:05Z@Asia/Seoul``; the zone names the
    local dates shown in it. ``start`` is None for immediate.
    """

    frequency: Frequency
    key: str
    start: datetime | None
    end: datetime
    timezone: str


@dataclass(frozen=True, slots=True)
class Announced:
    """A live post that became new at ``eligible_at`` (announced, or released from hold)."""

    post_id: str
    eligible_at: datetime
    published: datetime
    categories: tuple[str, ...]
    title: str = ""

    @property
    def position(self) -> tuple[datetime, str]:
        """Where it stands in the order posts became new (ties: by id)."""
        return (self.eligible_at, self.post_id)


class Cursor(NamedTuple):
    """How far one subscriber's announcements were considered, in the order posts became
    new: every post up to ``until`` (and, where ``post`` is set, those new at exactly
    ``until`` up to that id) was either put in a digest for them or was not theirs."""

    until: datetime
    post: str | None = None  # None: everything new at ``until`` is covered

    def covers(self, position: tuple[datetime, str]) -> bool:
        at, post_id = position
        return at < self.until or (at == self.until and (self.post is None or post_id <= self.post))


@dataclass(frozen=True, slots=True)
class Recipient:
    """An active subscriber and how far their announcements were considered."""

    subscriber: Subscriber
    cursor: Cursor | None = None


def content_key(post_ids: Sequence[str]) -> str:
    """A short, stable name for a list of posts (one digest's content within a period)."""
    blob = "\n".join(post_ids).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class DigestPlan:
    """One digest to create: a period, its posts, and who gets it."""

    period: Period
    post_ids: tuple[str, ...]
    subscriber_ids: tuple[int, ...]

    @property
    def content_key(self) -> str:
        return content_key(self.post_ids)


@dataclass(frozen=True)
class RunPlan:
    """What one digest run creates: digests, and how far each considered subscriber is covered."""

    digests: tuple[DigestPlan, ...]
    covered: dict[int, Cursor] = field(default_factory=dict)
    late: int = 0  # subscribers whose digest was missed by over max_lateness (rolled over)

    @property
    def messages(self) -> int:
        return sum(len(d.subscriber_ids) for d in self.digests)
