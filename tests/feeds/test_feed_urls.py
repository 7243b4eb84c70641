"""Only http(s) URLs reach a feed (issue 14, item 16): a front-matter image such as
`javascript:alert(2)` never lands in RSS's <enclosure>, media:thumbnail or JSON Feed's
image; the post is reported by file:line and key, and the other posts are published."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest

from tests.conftest import run_feedsvc

GOOD = """---
title: 해운대 불꽃축제 안내
date: 2024-05-02 09:00:00 +0900
image: /assets/불꽃.jpg
---
올해 <T> 축제는 토요일에 열립니다.
"""


def post_with_image(image: str) -> str:
    return f"""---
title: 수상한 그림
date: 2024-05-01 09:00:00 +0900
image: "{image}"
---
본문입니다.
"""


@pytest.mark.parametrize(
    "image",
    [
        "javascript:alert(2)",
        " JavaScript:alert(2)",
        "data:image/png;base64,AAAA",
        "file:///etc/passwd",
    ],
)
def test_an_image_that_is_not_http_is_refused_by_file_line_and_key(
    tmp_path: Path, image: str
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "2024-05-01-수상한-그림.md").write_text(post_with_image(image), encoding="utf-8")
    (content / "2024-05-02-불꽃축제.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        'site: {title: "부산 소식", url: "https://news.example.kr/", language: ko}\n'
        f'storage: {{url: "sqlite:///{tmp_path / "state.db"}"}}\n',
        encoding="utf-8",
    )
    built = run_feedsvc("--config", str(tmp_path / "config.yaml"), "build")
    assert built.returncode == 1, built.stderr
    assert "2024-05-01-수상한-그림.md:4: error: 'image' must be an http(s) URL" in built.stderr
    public = tmp_path / "public"
    for name in ("feed.xml", "atom.xml", "feed.json"):
        text = (public / name).read_text("utf-8")
        assert image.strip().split(":")[0].lower() + ":" not in text.lower(), name
    rss = feedparser.parse((public / "feed.xml").read_bytes())
    (entry,) = rss.entries  # the good post is published
    assert entry.title == "해운대 불꽃축제 안내"
    urls = [e["href"] for e in entry.get("enclosures", [])] + [
        t["url"] for t in entry.get("media_thumbnail", [])
    ]
    assert urls and all(u.startswith("https://news.example.kr/") for u in urls), urls
    items = json.loads((public / "feed.json").read_text("utf-8"))["items"]
    assert [i["image"] for i in items] == ["https://news.example.kr/assets/%EB%B6%88%EA%BD%83.jpg"]
