"""Values shared by the digest tests: a Korean site, its posts, one digest period."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import Connection, insert

from feedsvc.config import Settings, settings_from_mapping
from feedsvc.models import Author, Frequency, Image, Period, Post, PostMeta, meta_to_dict
from feedsvc.newsletter.messages import DigestContent, Personal
from feedsvc.storage.schema import posts as posts_table

SITE_URL = "https://news.example.kr/"
PUBLIC_URL = "https://news.example.kr/"
SECRET = "테스트-비밀-키-0123456789abcdef"
T0 = datetime(2024, 5, 31, 10, 0, tzinfo=UTC)  # 19:00 KST on Friday 31 May 2024


def site_mapping(**sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "site": {
            "title": "부산 시정 소식",
            "url": SITE_URL,
            "description": "부산의 시정 소식과 생활 정보",
            "language": "ko",
            "timezone": "Asia/Seoul",
            "author": {"name": "편집팀", "email": "editor@example.kr"},
        },
        "digest": {
            "from": "부산 시정 소식 편집팀 <news@example.kr>",
            "subject": "{{ site.title }}: 새 글 {{ posts | length }}편",
        },
        "server": {"public_url": PUBLIC_URL},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return raw


def digest_settings(base: Path | None = None, **sections: Any) -> Settings:
    return settings_from_mapping(site_mapping(**sections), base_dir=base or Path("."))


def make_post(
    slug: str,
    *,
    title: str = "해운대 바다축제 개막",
    published: datetime = T0,
    categories: tuple[str, ...] = ("부산",),
    html: str = "<p>본문</p>",
    summary: str = "요약",
    image: str | None = None,
    post_id: str | None = None,
) -> Post:
    url = f"{SITE_URL}{published:%Y/%m/%d}/{slug}/"
    meta = PostMeta(
        id=post_id or url,
        slug=slug,
        url=url,
        source=f"{slug}.md",
        title=title,
        published=published,
        updated=published,
        date_source="front_matter",
        categories=categories,
        author=Author("편집팀"),
        image=None if image is None else Image(image, "image/jpeg"),
        excerpt=None,
    )
    return Post(meta, html, summary)


def sample_posts() -> tuple[Post, ...]:
    """Three posts as a Korean city news site would write them."""
    return (
        make_post(
            "haeundae-festival",
            title="해운대 바다축제, 6월 1일 개막",
            categories=("부산", "축제"),
            image=f"{SITE_URL}assets/img/haeundae.jpg",
            summary=(
                "올해 해운대 바다축제는 6월 1일부터 9일 동안 열립니다. 드론 800대가 "
                "광안대교 위를 수놓는 야간 공연과 모래 조각전이 함께 열립니다."
            ),
            html='<p>올해 해운대 바다축제는 <a href="/events/">행사 안내</a>를 참고하세요.</p>',
        ),
        make_post(
            "smart-city-expo",
            title="부산 스마트시티 박람회 참가 신청 안내",
            published=datetime(2024, 5, 31, 6, 0, tzinfo=UTC),
            categories=("스마트시티",),
            summary="벡스코에서 열리는 스마트시티 박람회의 참가 신청을 6월 14일까지 받습니다.",
        ),
        make_post(
            "bus-routes",
            title="시내버스 노선 개편 & 첫차 시간 변경 <안내>",
            published=datetime(2024, 5, 31, 2, 0, tzinfo=UTC),
            categories=("교통",),
            summary="7월부터 시내버스 12개 노선이 바뀝니다. 바뀐 노선과 첫차 시간을 확인하세요.",
        ),
    )


def daily_period() -> Period:
    return Period(
        Frequency.DAILY,
        "daily:2024-06-01@Asia/Seoul",
        datetime(2024, 5, 30, 23, tzinfo=UTC),
        datetime(2024, 5, 31, 23, tzinfo=UTC),
        "Asia/Seoul",
    )


def sample_content(posts: tuple[Post, ...] | None = None, digest_id: int = 7) -> DigestContent:
    return DigestContent(
        digest_id, daily_period(), posts or sample_posts(), datetime(2024, 5, 31, 23, tzinfo=UTC)
    )


def minji(subscriber_id: int = 42) -> Personal:
    return Personal(
        subscriber_id=subscriber_id,
        email="minji@example.kr",
        name="김민지",
        unsubscribe_url=f"{PUBLIC_URL}unsubscribe/{subscriber_id}.q1w2e3r4t5y6.c2lnbmF0dXJl",
        preferences_url=f"{PUBLIC_URL}preferences/{subscriber_id}.q1w2e3r4t5y6.c2lnbmF0dXJl",
    )


def store_post(conn: Connection, post: Post, *, first_seen: datetime | None = None) -> None:
    """A row in the posts table as a build leaves it (last good metadata and render)."""
    import json

    meta = post.meta
    conn.execute(
        insert(posts_table).values(
            source_path=meta.source,
            post_id=meta.id,
            slug=meta.slug,
            size=len(post.html),
            mtime_ns=1,
            content_hash="h",
            fingerprint="f",
            first_seen=first_seen or meta.published,
            published=meta.published,
            meta=json.dumps(meta_to_dict(meta), ensure_ascii=False),
            html=post.html,
            summary=post.summary,
            render_key="h:f",
        )
    )


def add_subscriber(
    conn: Connection,
    email: str,
    *,
    name: str | None = "김민지",
    frequency: str = "daily",
    categories: tuple[str, ...] = (),
    timezone: str | None = None,
    joined: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    status: str = "active",
) -> int:
    """A subscriber row as the subscribers commands leave it; its id."""
    import json

    from sqlalchemy import select

    from feedsvc.storage.schema import subscribers

    conn.execute(
        insert(subscribers).values(
            email=email,
            name=name,
            status=status,
            frequency=frequency,
            categories=json.dumps(list(categories), ensure_ascii=False),
            timezone=timezone,
            created=joined,
            confirmed=joined,
            consent_source="web",
        )
    )
    found = conn.execute(select(subscribers.c.id).where(subscribers.c.email == email)).scalar()
    assert found is not None
    return int(found)


def parse_html(text: str) -> etree._Element:
    """An HTML document parsed by lxml (as a browser would, leniently)."""
    from lxml import html as lxml_html

    return lxml_html.fromstring(text)


def text_of(element: etree._Element) -> str:
    """All the text below ``element``."""
    return "".join(str(text) for text in element.itertext())


def by_class(document: etree._Element, name: str) -> list[etree._Element]:
    """Elements whose class attribute holds ``name``."""
    return [e for e in document.iter() if name in (e.get("class") or "").split()]
