"""Digest content → email bytes: rendered once per content, personalised by substitution.

    posts ─ nh3 ─┐
    site, period ┼─▶ digest.html.j2 ─▶ css-inline ─▶ QP ─┐
                 └─▶ digest.txt.j2 ─────────────────▶ QP ─┼─▶ EmailMessage (SMTP policy)
    Subject, From, List-Id: mime.encode_words ────────────┘        │ as_bytes(), once
                                                                   ▼
                          chunks + slots ─▶ per subscriber: To, Message-ID, List-Unsubscribe,
                                            unsubscribe/preferences URLs, address ─▶ (DKIM)

Templates see placeholders (``FeedsvcSlot0UNSUBHx``: ASCII letters and digits, which
HTML escaping, css-inline and quoted-printable all leave alone) where per-subscriber values
go; ``feedsvc.mime`` keeps each on a quoted-printable line segment of its own. Personalising
is then a join of byte chunks and a few short encoded values: no template, no MIME, per
recipient. The result is what a full render with the recipient's values gives, to the
byte once decoded (a test compares them).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import css_inline
import nh3
from jinja2 import Environment
from markupsafe import Markup, escape

from feedsvc.config import Settings
from feedsvc.digests import Period
from feedsvc.errors import ConfigError
from feedsvc.mime import (
    MAX_LINE,
    ascii_address,
    assemble,
    assemble_encoded,
    clean_header_text,
    format_address,
    header_text,
    phrase,
    qp_value,
    qp_with_slots,
)
from feedsvc.models import Frequency, Post
from feedsvc.templating import render, template_file, text_environment
from feedsvc.urls import quote_url

ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058
PREHEADER_LENGTH = 150


# --- sanitising ------------------------------------------------------------------------------

_TAGS = nh3.ALLOWED_TAGS - {"map", "area", "nav", "details", "summary"}
_ATTRIBUTES = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {"src", "alt", "width", "height", "title"},
    "a": {"href", "title", "hreflang"},
    "abbr": {"title"},
}
_URL_SCHEMES = {"http", "https", "mailto", "tel"}


def sanitise_html(fragment: str, base_url: str) -> str:
    """Post HTML safe to put in an email: no script, style, iframe, form, object, no event
    handlers or style attributes, no ``javascript:`` (only http, https, mailto, tel
    links); any relative URL left is made absolute against ``base_url``."""
    return nh3.clean(
        fragment,
        tags=_TAGS,
        clean_content_tags={"script", "style", "template", "noscript"},
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        url_relative=("rewrite_with_base", base_url),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


# --- what templates see ------------------------------------------------------------------------

LABELS: dict[str, dict[str, str]] = {
    "ko": {
        "new_posts": "새 글 {count}편",
        "new_post": "새 글 1편",
        "read_more": "계속 읽기",
        "unsubscribe": "구독 해지",
        "preferences": "구독 설정 변경",
        "view_site": "사이트에서 모든 글 보기",
        "sent_to": "이 메일은 {email} 주소로 보내 드렸습니다.",
        "why": "{site}의 새 글 알림을 구독하셨습니다.",
        "immediate": "새 글 알림",
        "daily": "오늘의 새 글",
        "weekly": "이번 주 새 글",
        "confirm_subject": "{site} 구독을 확인해 주세요",
        "confirm_heading": "구독을 확인해 주세요",
        "confirm_body": "{site}의 새 글을 이메일로 받으시려면 아래 버튼을 눌러 주세요.",
        "confirm_button": "구독 확인",
        "confirm_expires": "이 링크는 {days}일 동안 유효합니다.",
        "confirm_ignore": "직접 신청하지 않으셨다면 이 메일을 무시하셔도 됩니다. "
        "확인하지 않으면 아무것도 보내지 않습니다.",
    },
    "en": {
        "new_posts": "{count} new posts",
        "new_post": "1 new post",
        "read_more": "Read more",
        "unsubscribe": "Unsubscribe",
        "preferences": "Change preferences",
        "view_site": "See every post on the site",
        "sent_to": "This email was sent to {email}.",
        "why": "You subscribed to new posts from {site}.",
        "immediate": "New post",
        "daily": "Today's new posts",
        "weekly": "This week's new posts",
        "confirm_subject": "Please confirm your subscription to {site}",
        "confirm_heading": "Please confirm your subscription",
        "confirm_body": "To receive new posts from {site} by email, press the button below.",
        "confirm_button": "Confirm subscription",
        "confirm_expires": "This link works for {days} days.",
        "confirm_ignore": "If you did not ask for this, ignore this email: "
        "nothing is sent unless you confirm.",
    },
}
_KO_WEEKDAYS = "월화수목금토일"


def labels_for(language: str) -> dict[str, str]:
    return LABELS["ko"] if language.lower().startswith("ko") else LABELS["en"]


def count_label(count: int, language: str) -> str:
    """'새 글 3편', '3 new posts', '1 new post'."""
    labels = labels_for(language)
    return labels["new_post"] if count == 1 else labels["new_posts"].format(count=count)


def date_label(moment: datetime, language: str) -> str:
    """'2024년 6월 1일 (토)' for Korean sites, 'Sat, 1 June 2024' otherwise."""
    if language.lower().startswith("ko"):
        weekday = _KO_WEEKDAYS[moment.weekday()]
        return f"{moment.year}년 {moment.month}월 {moment.day}일 ({weekday})"
    return f"{moment:%a}, {moment.day} {moment:%B} {moment.year}"


@dataclass(frozen=True, slots=True)
class SiteView:
    title: str
    url: str
    description: str
    language: str


@dataclass(frozen=True, slots=True)
class PostView:
    id: str
    title: str
    url: str
    published: datetime  # in the digest's zone
    date: str
    summary: str
    html: Markup  # sanitised
    image: str | None
    categories: tuple[str, ...]
    author: str | None


@dataclass(frozen=True, slots=True)
class PeriodView:
    frequency: str
    heading: str  # "오늘의 새 글"
    label: str  # "2024년 6월 1일 (토)", or a range for weekly digests
    start: datetime | None
    end: datetime


@dataclass(frozen=True, slots=True)
class Sender:
    """What every message from this site shares (``site.*``, ``digest.*``)."""

    site: SiteView
    from_name: str
    from_address: str
    subject_template: str
    public_url: str
    timezone: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        name, address = parseaddr(settings.digest.from_)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ConfigError(
                settings.source,
                [
                    f"digest.from = {settings.digest.from_!r}: expected a sender such as "
                    "'부산 시정 소식 <news@example.kr>'"
                ],
            )
        return cls(
            site=SiteView(
                title=settings.site.title,
                url=settings.site.url,
                description=settings.site.description,
                language=settings.site.language,
            ),
            from_name=name,
            from_address=address,
            subject_template=settings.digest.subject,
            public_url=settings.server.public_url,
            timezone=settings.site.timezone,
        )

    @property
    def domain(self) -> str:
        return ascii_address(self.from_address).rpartition("@")[2].lower()

    @property
    def list_id(self) -> str:
        host = (urlsplit(self.site.url).hostname or "localhost").lower()
        host = ascii_address("x@" + host).rpartition("@")[2]
        return f"digest.{host}"


@dataclass(frozen=True, slots=True)
class DigestContent:
    """One digest: the posts some subscribers get for one period (rendered once)."""

    digest_id: int
    period: Period
    posts: tuple[Post, ...]
    created: datetime  # the Date header


def post_view(post: Post, tz: ZoneInfo, language: str) -> PostView:
    meta = post.meta
    local = meta.published.astimezone(tz)
    image = (
        meta.image.url if meta.image and meta.image.url.startswith(("https:", "http:")) else None
    )
    return PostView(
        id=meta.id,
        title=clean_header_text(meta.title),
        url=quote_url(meta.url),
        published=local,
        date=date_label(local, language),
        summary=post.summary,
        html=Markup(sanitise_html(post.html, meta.url)),
        image=None if image is None else quote_url(image),
        categories=meta.categories,
        author=meta.author.name if meta.author else None,
    )


def period_view(period: Period, tz: ZoneInfo, language: str) -> PeriodView:
    labels = labels_for(language)
    end = period.end.astimezone(tz)
    label = date_label(end, language)
    if period.frequency is Frequency.WEEKLY and period.start is not None:
        first = period.start.astimezone(tz)
        last = end - timedelta(days=1)
        label = f"{date_label(first, language)} – {date_label(last, language)}"
    return PeriodView(
        frequency=period.frequency.value,
        heading=labels[period.frequency.value],
        label=label,
        start=None if period.start is None else period.start.astimezone(tz),
        end=end,
    )


def preheader(posts: Sequence[PostView], limit: int = PREHEADER_LENGTH) -> str:
    """The inbox preview line: the excerpts, one after another, cut near ``limit``."""
    text = " · ".join(p.summary or p.title for p in posts if p.summary or p.title)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ·,.") + "…"


def render_subject(sender: Sender, context: dict[str, Any], source: str) -> str:
    """``digest.subject`` rendered (plain text, one line)."""
    try:
        template = text_environment().from_string(sender.subject_template)
        subject = clean_header_text(template.render(context))
    except Exception as exc:  # any Jinja2 error in one config value: say which key
        raise ConfigError(
            source, [f"digest.subject = {sender.subject_template!r}: {exc}; fix the template"]
        ) from None
    return subject or sender.site.title


# --- slots ------------------------------------------------------------------------------------

_PERSONAL = (
    "TO",
    "MESSAGEID",
    "LISTUNSUB",
    "UNSUBH",
    "UNSUBT",
    "PREFSH",
    "PREFST",
    "ADDRH",
    "ADDRT",
)
_SHARED = ("SUBJECT", "FROM", "LISTID")


def _slot_prefix(texts: Sequence[str]) -> str:
    """'FeedsvcSlot0', or the first numbered variant no input text contains."""
    blob = "\n".join(texts)
    number = 0
    while f"FeedsvcSlot{number}" in blob:
        number += 1
    return f"FeedsvcSlot{number}"


@dataclass(frozen=True, slots=True)
class Personal:
    """What differs between two recipients of one digest."""

    subscriber_id: int
    email: str
    name: str | None
    unsubscribe_url: str
    preferences_url: str


@dataclass(frozen=True, slots=True)
class Personalised:
    message_id: str
    data: bytes


@dataclass(frozen=True)
class MessageTemplate:
    """A serialised message with slots where each recipient's values go."""

    digest_id: int
    chunks: tuple[bytes, ...]  # one more than slots
    slots: tuple[str, ...]
    domain: str
    mailto: str
    tag_key: bytes
    subject: str

    def message_id(self, subscriber_id: int) -> str:
        """Deterministic per digest × subscriber: a retry carries the same Message-ID."""
        tag = hashlib.blake2b(
            f"{self.digest_id}.{subscriber_id}".encode(), key=self.tag_key, digest_size=5
        ).hexdigest()
        return f"<{self.digest_id}.{subscriber_id}.{tag}@{self.domain}>"

    def personalise(self, person: Personal) -> Personalised:
        """The message bytes for one recipient: the chunks with the values in the slots."""
        message_id = self.message_id(person.subscriber_id)
        unsubscribe, preferences, email = (
            person.unsubscribe_url,
            person.preferences_url,
            person.email,
        )
        unsubscribe_qp, unsubscribe_html = _qp_pair(unsubscribe)
        preferences_qp, preferences_html = _qp_pair(preferences)
        email_qp, email_html = _qp_pair(email)
        values = {
            "TO": format_address(person.name, email, "To").encode("utf-8"),
            "MESSAGEID": message_id.encode("ascii"),
            "LISTUNSUB": (
                f"<{unsubscribe}>,\r\n <mailto:{self.mailto}?subject=unsubscribe>"
            ).encode("ascii"),
            "UNSUBH": unsubscribe_html,
            "UNSUBT": unsubscribe_qp,
            "PREFSH": preferences_html,
            "PREFST": preferences_qp,
            "ADDRH": email_html,
            "ADDRT": email_qp,
        }
        parts = [self.chunks[0]]
        for slot, chunk in zip(self.slots, self.chunks[1:], strict=True):
            parts.append(values[slot])
            parts.append(chunk)
        return Personalised(message_id, b"".join(parts))


def _qp_pair(value: str) -> tuple[bytes, bytes]:
    """``value`` quoted-printable as text, and HTML-escaped (the same bytes for URLs)."""
    plain = qp_value(value)
    escaped = str(escape(value))
    return plain, plain if escaped == value else qp_value(escaped)


_INLINER = css_inline.CSSInliner(
    keep_at_rules=True, load_remote_stylesheets=False, keep_link_tags=False
)


def render_digest(sender: Sender, content: DigestContent, env: Environment) -> MessageTemplate:
    """Render ``content`` once: templates, CSS inlining, MIME; personalise the result."""
    tz = ZoneInfo(content.period.timezone)
    language = sender.site.language
    posts = [post_view(post, tz, language) for post in content.posts]
    prefix = _slot_prefix(
        [sender.site.title, sender.site.description, sender.subject_template]
        + [text for p in content.posts for text in (p.html, p.summary, p.meta.title, p.meta.url)]
    )
    common: dict[str, Any] = {
        "site": sender.site,
        "posts": posts,
        "period": period_view(content.period, tz, language),
        "labels": labels_for(language),
        "preheader": preheader(posts),
        "count_label": count_label(len(posts), language),
    }
    subject = render_subject(sender, common, "digest.subject")
    html_body = render(
        env,
        "digest.html.j2",
        {
            **common,
            "subject": subject,
            "unsubscribe_url": prefix + "UNSUBHx",
            "preferences_url": prefix + "PREFSHx",
            "email": prefix + "ADDRHx",
        },
    )
    text_body = render(
        env,
        "digest.txt.j2",
        {
            **common,
            "subject": subject,
            "unsubscribe_url": prefix + "UNSUBTx",
            "preferences_url": prefix + "PREFSTx",
            "email": prefix + "ADDRTx",
        },
    )
    for name, body, slot in (
        ("digest.html.j2", html_body, "UNSUBHx"),
        ("digest.txt.j2", text_body, "UNSUBTx"),
    ):
        if prefix + slot not in body:
            raise ConfigError(
                template_file(env, name),
                ["the template must show {{ unsubscribe_url }} (a visible unsubscribe link)"],
            )
    html_body = inline_css(html_body, "digest.html.j2")
    headers = [
        ("From", prefix + "FROMx"),
        ("To", prefix + "TOx"),
        ("Subject", prefix + "SUBJECTx"),
        ("Date", format_datetime(content.created.astimezone(ZoneInfo(sender.timezone)))),
        ("Message-ID", prefix + "MESSAGEIDx"),
        ("List-Id", prefix + "LISTIDx"),
        ("List-Unsubscribe", prefix + "LISTUNSUBx"),
        ("List-Unsubscribe-Post", ONE_CLICK),
    ]
    boundary_seed = f"{content.digest_id}:{subject}:{text_body}:{html_body}".encode()
    boundary = "=_feedsvc_" + hashlib.blake2b(boundary_seed, digest_size=12).hexdigest()
    personal = re.compile(re.escape(prefix) + "(" + "|".join(_PERSONAL) + ")x")
    data = assemble(
        headers, qp_with_slots(text_body, personal), qp_with_slots(html_body, personal), boundary
    )
    list_name = phrase(clean_header_text(sender.site.title), MAX_LINE - len("List-Id: "))
    shared = {
        "SUBJECT": header_text(subject, "Subject"),
        "FROM": format_address(sender.from_name, sender.from_address, "From"),
        "LISTID": f"{list_name} <{sender.list_id}>",
    }
    for name, value in shared.items():
        data = data.replace((prefix + name + "x").encode("ascii"), value.encode("utf-8"))
    pieces = re.split(personal.pattern.encode("ascii"), data)
    return MessageTemplate(
        digest_id=content.digest_id,
        chunks=tuple(pieces[0::2]),
        slots=tuple(piece.decode("ascii") for piece in pieces[1::2]),
        domain=sender.domain,
        mailto=ascii_address(sender.from_address),
        tag_key=hashlib.blake2b(sender.site.url.encode(), digest_size=16).digest(),
        subject=subject,
    )


def inline_css(document: str, name: str) -> str:
    """CSS from ``<style>`` moved into ``style`` attributes; @media rules (dark mode,
    narrow screens) stay in a ``<style>`` in the head."""
    try:
        return _INLINER.inline(document)
    except css_inline.InlineError as exc:
        raise ConfigError(name, [f"css-inline cannot process the CSS: {exc}"]) from None


# --- confirmation ---------------------------------------------------------------------------


def render_confirmation(
    sender: Sender,
    env: Environment,
    *,
    email: str,
    name: str | None,
    confirm_url: str,
    valid_for: timedelta,
    now: datetime,
) -> bytes:
    """The double opt-in message (``confirm.html.j2``, ``confirm.txt.j2``)."""
    labels = labels_for(sender.site.language)
    days = max(1, round(valid_for / timedelta(days=1)))
    context: dict[str, Any] = {
        "site": sender.site,
        "labels": labels,
        "email": email,
        "name": name,
        "confirm_url": confirm_url,
        "valid_days": days,
        "preheader": labels["confirm_body"].format(site=sender.site.title),
    }
    subject = labels["confirm_subject"].format(site=sender.site.title)
    context["subject"] = subject
    html_body = inline_css(render(env, "confirm.html.j2", context), "confirm.html.j2")
    text_body = render(env, "confirm.txt.j2", context)
    seed = f"{email}\n{confirm_url}\n{now.isoformat()}".encode()
    tag = hashlib.blake2b(seed, digest_size=10).hexdigest()
    headers = [
        ("From", format_address(sender.from_name, sender.from_address, "From")),
        ("To", format_address(name, email, "To")),
        ("Subject", header_text(subject, "Subject")),
        ("Date", format_datetime(now.astimezone(ZoneInfo(sender.timezone)))),
        ("Message-ID", f"<confirm.{tag}@{sender.domain}>"),
    ]
    never = re.compile(r"(?!x)x")
    return assemble_encoded(
        headers,
        qp_with_slots(text_body, never),
        qp_with_slots(html_body, never),
        "=_feedsvc_" + tag,
    )
