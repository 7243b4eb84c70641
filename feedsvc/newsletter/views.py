"""What digest templates see of posts and the period: plain frozen views, with post HTML
sanitised (nh3) and dates in the digest's zone and the site's language. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup

from feedsvc.content.markup_bounds import measure
from feedsvc.content.sanitise import sanitise_email_html
from feedsvc.content.urls import quote_url
from feedsvc.delivery.mime import clean_header_text
from feedsvc.models import Frequency, Period, Post
from feedsvc.newsletter.labels import date_label, period_heading

PREHEADER_LENGTH = 150


# --- sanitising ------------------------------------------------------------------------------


def _bounded_html(fragment: str, base_url: str) -> str:
    """The sanitised post HTML, or nothing (the template still shows the summary) when
    it nests too deep or is too big for nh3 and css-inline: a render stored before the
    build refused such posts, or markup html5ever reads deeper than libxml2 did."""
    if measure(fragment) is not None:
        return ""
    clean = sanitise_email_html(fragment, base_url)
    return "" if measure(clean) is not None else clean


# --- views -----------------------------------------------------------------------------------


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
        html=Markup(_bounded_html(post.html, meta.url)),
        image=None if image is None else quote_url(image),
        categories=meta.categories,
        author=meta.author.name if meta.author else None,
    )


def period_view(period: Period, tz: ZoneInfo, language: str) -> PeriodView:
    end = period.end.astimezone(tz)
    label = date_label(end, language)
    if period.frequency is Frequency.WEEKLY and period.start is not None:
        first = period.start.astimezone(tz)
        last = end - timedelta(days=1)
        label = f"{date_label(first, language)} – {date_label(last, language)}"
    return PeriodView(
        frequency=period.frequency.value,
        heading=period_heading(period.frequency.value, language),
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
