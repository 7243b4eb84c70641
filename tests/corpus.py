"""A deterministic synthetic blog corpus, for the tests and the benchmarks.

It is the same kind and size of corpus as the shared benchmark protocol's generator
(make_corpus.py) writes, not the same bytes, so that the tests and bench/ need nothing
outside the repository (bench/ can still use that one: --shared DIR).

The posts look like a real Jekyll or Hugo site: about 70% Korean, the rest English;
YAML front matter on nine posts in ten and TOML (Hugo's ``+++``) on the tenth; the date
in the front matter or only in the file name (``2019-06-09-post-12.md``); bodies with
headings, paragraphs, lists, tables, code, quotes, images and relative links. The
subscriber CSV has the columns ``feedsvc subscribers import`` reads
(``email,name,frequency,categories``).

The front matter is the variety the YAML and TOML fast paths are tested on
(tests/content/test_simple_yaml.py, tests/content/test_simple_toml.py), so change its keys or shapes
only together with those tests:

- YAML: ``title`` (double-quoted), ``date`` (``2019-06-09 03:05:00 +0900``, on a bit
  more than half of the YAML posts), ``categories`` (flow list of plain words, one or
  two), ``tags`` (flow list, one to four, left out when there are none), ``excerpt``
  (folded block scalar ``>``, one line, on half), ``image`` (a plain path, on 40%);
- TOML: ``title`` (basic string), ``date`` (offset date-time), ``categories`` and
  ``tags`` (arrays of strings; ``tags = []`` when there are none).

Every post is made from its own random generator, seeded by the corpus seed and its
number, so a smaller corpus is the start of a larger one and the output depends only on
the seed and the counts. Standard library only: bench/ runs this file as a script.

    python tests/corpus.py OUT_DIR --posts 10000 [--seed 1] [--subscribers N --csv FILE]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

KOREAN = tuple(
    """
    시민 도시 데이터 플랫폼 서비스 교통 안전 환경 에너지 관광 주거 교육 건강 문화
    행정 예산 사업 지원 정책 개발 연구 기술 혁신 협력 지역 항만 해양 산업 일자리
    청년 복지 공공 민간 투자 발표 계획 추진 확대 개선 운영 점검 공개 참여 설명회
    시범 구축 분석 예측 센서 네트워크 클라우드 인공지능 자율주행 스마트 통합 관리
    체계 실시간 모니터링 대응 재난 기후 탄소중립 보행자 자전거 버스 지하철 주차
    공원 하천 해수욕장 축제 전시 도서관 박물관 주민 의견 조사 결과 성과 목표 단계
    올해 내년 해운대 광안리 서면 기장 영도 동래 디지털 가상공간 시뮬레이션 관제
    시범운영 기본계획 실증사업 공모사업 주민설명회 해양관광 교통정보 안전점검 빅데이터
    데이터센터 탄소배출 신재생에너지 도시계획 재개발 행정복지센터 공유자전거 미세먼지
    열섬현상 침수예방 지능형교통체계 정보공개 업무협약 국비지원 지방자치단체 광역교통
    물류허브 수소버스 전기차충전소 스마트횡단보도 원도심 생활인구 디지털플랫폼
    """.split()  # noqa: SIM905 (a block of words reads better than 126 quoted ones)
)
ENGLISH = tuple(
    """
    release notes reader feed archive update harbour transit sensor platform dataset
    pipeline latency budget rollout migration storage backend frontend request response
    cluster replica snapshot metric dashboard alert incident review proposal council
    district resident survey weather coastline festival museum library commuter bicycle
    network gateway scheduler worker queue template renderer parser index search cache
    """.split()  # noqa: SIM905
)
# Twenty categories, as in the shared benchmark corpus: the "all feeds" benchmark rows
# write one feed per category and format. Plain words, no YAML or TOML specials.
CATEGORIES = (
    "Notice",
    "Engineering",
    "도시재생",
    "Culture",
    "Policy",
    "Research",
    "Release",
    "Column",
    "해운대",
    "Mobility",
    "Climate",
    "Health",
    "Learning",
    "Economy",
    "Ocean",
    "Safety",
    "Travel",
    "Housing",
    "Transit",
    "행사",
)
TAGS = (*(f"topic-{n}" for n in range(60)), "데이터", "해양", "도시재생", "AI", "GIS")

FIRST_DATE = datetime(2016, 1, 1, 9, 0)  # local time in Seoul (+09:00)
SPAN_MINUTES = 9 * 365 * 24 * 60  # posts spread over nine years, to the minute
KOREAN_SHARE = 0.7
TOML_SHARE = 0.1  # of all posts
YAML_DATED_SHARE = 0.5  # of all posts: YAML with a date line; the rest only in the name

SURNAMES = tuple("김이박최정강조윤장임한오서신권황안송류홍")  # one syllable each
GIVEN = tuple("민서준지현우수연하은도윤재영진호유아시원")
FREQUENCIES = ("daily", "daily", "weekly", "immediate")  # half daily


# TOML front matter (dated); YAML with a date line; YAML dated only by the file name.
Style = Literal["toml", "yaml-dated", "yaml-undated"]


@dataclass(frozen=True)
class Post:
    """What a post's front matter and file name are made from."""

    number: int
    korean: bool
    when: datetime  # naive, Seoul time
    title: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    style: Style
    excerpt: str | None
    image: str | None

    @property
    def slug(self) -> str:
        return f"post-{self.number}"

    @property
    def path(self) -> Path:
        """Where the post goes, below the corpus folder: a folder per year."""
        name = f"{self.slug}.md" if self.style == "toml" else f"{self.when:%Y-%m-%d}-{self.slug}.md"
        return Path(str(self.when.year), name)


def _words(rng: random.Random, count: int, korean: bool) -> str:
    pool = KOREAN if korean else ENGLISH
    return " ".join(rng.choice(pool) for _ in range(count))


def _sentences(rng: random.Random, count: int, korean: bool) -> str:
    """About ``count`` words, as sentences of six to twelve words."""
    out = []
    while count > 0:
        length = min(count, rng.randint(6, 12))
        sentence = _words(rng, length, korean)
        out.append(sentence[0].upper() + sentence[1:] + ".")
        count -= length
    return " ".join(out)


def make_post(rng: random.Random, number: int) -> Post:
    korean = rng.random() < KOREAN_SHARE
    when = FIRST_DATE + timedelta(minutes=rng.randrange(SPAN_MINUTES))
    roll = rng.random()
    style: Style = "yaml-undated"
    if roll < TOML_SHARE:
        style = "toml"
    elif roll < TOML_SHARE + YAML_DATED_SHARE:
        style = "yaml-dated"
    title = _words(rng, rng.randint(4, 9), korean)
    categories = tuple(rng.sample(CATEGORIES, rng.randint(1, 2)))
    tags = tuple(rng.sample(TAGS, rng.randint(0, 4)))
    excerpt = image = None
    if style != "toml":  # Hugo-style posts carry only the four keys
        if rng.random() < 0.5:
            excerpt = _words(rng, rng.randint(20, 30), korean) + "."
        if rng.random() < 0.4:
            image = f"/assets/img/cover-{number}.png"
    return Post(number, korean, when, title, categories, tags, style, excerpt, image)


def front_matter(post: Post) -> str:
    """The post's front matter, fences included, ending in a newline."""
    if post.style == "toml":
        return _toml_front_matter(post)
    return _yaml_front_matter(post)


def _yaml_front_matter(post: Post) -> str:
    lines = ["---", f'title: "{post.title}"']
    if post.style == "yaml-dated":
        lines.append(f"date: {post.when:%Y-%m-%d %H:%M:%S} +0900")
    lines.append(f"categories: [{', '.join(post.categories)}]")
    if post.tags:
        lines.append(f"tags: [{', '.join(post.tags)}]")
    if post.excerpt is not None:
        lines += ["excerpt: >", f"  {post.excerpt}"]
    if post.image is not None:
        lines.append(f"image: {post.image}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def _toml_array(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def _toml_front_matter(post: Post) -> str:
    return (
        "+++\n"
        f'title = "{post.title}"\n'
        f"date = {post.when:%Y-%m-%dT%H:%M:%S}+09:00\n"
        f"categories = {_toml_array(post.categories)}\n"
        f"tags = {_toml_array(post.tags)}\n"
        "+++\n"
    )


CODE_BLOCKS = (
    "```python\ndef total(rows):\n    return sum(row.count for row in rows)\n```",
    "```yaml\nfeeds:\n  formats: [rss, atom]\n  limit: 20\n```",
    '```sh\ncurl -s "https://example.test/feed.xml" | head -n 5\n```',
    "```\n[2024-05-01 09:00] sync started\n[2024-05-01 09:02] 1,204 records\n```",
)
UNITS_KO = ("억원", "명", "건", "%", "km")
UNITS_EN = ("M KRW", "people", "cases", "%", "km")


def _table(rng: random.Random, korean: bool) -> str:
    head = "| 구분 | 수치 | 비고 |" if korean else "| Item | Value | Note |"
    units = UNITS_KO if korean else UNITS_EN
    rows = [
        f"| {_words(rng, 2, korean)} | {rng.randint(1, 999):,} {rng.choice(units)} "
        f"| {_words(rng, 1, korean)} |"
        for _ in range(rng.randint(2, 4))
    ]
    return "\n".join([head, "|---|---:|---|", *rows])


def _block(rng: random.Random, korean: bool) -> str | None:
    """A list, table, code block or quote after a section's text, or nothing."""
    roll = rng.random()
    if roll < 0.15:
        return "\n".join(f"- {_words(rng, rng.randint(4, 8), korean)}" for _ in range(4))
    if roll < 0.25:
        return "\n".join(f"{n}. {_words(rng, rng.randint(4, 8), korean)}" for n in (1, 2, 3))
    if roll < 0.4:
        return _table(rng, korean)
    if roll < 0.5:
        return rng.choice(CODE_BLOCKS)
    if roll < 0.55:
        return "> " + _sentences(rng, rng.randint(10, 20), korean)
    return None


def _links(rng: random.Random, post: Post) -> str:
    """Relative links: a site-absolute path to an earlier post, and a raw HTML anchor
    and a Markdown link relative to the post's own URL."""
    earlier = rng.randint(0, post.number)
    year = rng.randint(FIRST_DATE.year, post.when.year)
    if post.korean:
        return (
            f"[지난 글](/{year}/01/01/post-{earlier}/)과 "
            f'<a href="../related/{post.number}.html">관련 자료</a>, '
            f"[첨부](files/post-{post.number}.pdf)도 참고하세요."
        )
    return (
        f"See [an earlier post](/{year}/01/01/post-{earlier}/), "
        f'<a href="../related/{post.number}.html">related notes</a> '
        f"and [the attachment](files/post-{post.number}.pdf)."
    )


def body(rng: random.Random, post: Post) -> str:
    """The Markdown body: three to six sections."""
    parts = []
    for section in range(rng.randint(3, 6)):
        parts.append(f"## {_words(rng, rng.randint(3, 5), post.korean)}")
        parts += [
            _sentences(rng, rng.randint(27, 65), post.korean) for _ in range(rng.randint(1, 3))
        ]
        block = _block(rng, post.korean)
        if block is not None:
            parts.append(block)
        if rng.random() < 0.3:
            alt = _words(rng, 2, post.korean)
            where = "/assets/img" if rng.random() < 0.7 else "images"
            parts.append(f"![{alt}]({where}/post-{post.number}-{section}.png)")
        if rng.random() < 0.3:
            parts.append(_links(rng, post))
    return "\n\n".join(parts) + "\n"


def post_text(seed: int, number: int) -> tuple[Path, str]:
    """Post ``number`` of the corpus of ``seed``: its path below the corpus folder and
    its text."""
    rng = random.Random(f"post {seed} {number}")  # str seeds hash the same everywhere
    post = make_post(rng, number)
    return post.path, front_matter(post) + "\n" + body(rng, post)


def write_posts(folder: Path, posts: int, *, seed: int = 1) -> list[Path]:
    """Write ``posts`` posts below ``folder`` (a folder per year); return their paths."""
    written = []
    for number in range(posts):
        relative, text = post_text(seed, number)
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def write_subscribers(path: Path, rows: int, *, seed: int = 1) -> Path:
    """Write a subscriber CSV of ``rows`` rows (and a header) to ``path``: unique
    addresses, Korean names, half daily, a quarter weekly and a quarter immediate, zero
    to three of the posts' categories separated by ';'."""
    rng = random.Random(f"subscribers {seed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "frequency", "categories"])
        for number in range(rows):
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
            frequency = rng.choice(FREQUENCIES)
            categories = ";".join(rng.sample(CATEGORIES, rng.randint(0, 3)))
            writer.writerow([f"reader{number}@example.test", name, frequency, categories])
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic blog corpus.")
    parser.add_argument("out", type=Path, help="folder for the posts (made if missing)")
    parser.add_argument("--posts", type=int, default=10_000, help="how many (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="another seed, another corpus")
    parser.add_argument("--subscribers", type=int, default=0, help="also write N subscribers")
    parser.add_argument(
        "--csv", type=Path, help="where the subscribers go (default OUT/../subscribers.csv)"
    )
    args = parser.parse_args(argv)
    if args.posts < 0 or args.subscribers < 0:
        parser.error("--posts and --subscribers cannot be negative")
    args.out.mkdir(parents=True, exist_ok=True)
    write_posts(args.out, args.posts, seed=args.seed)
    if args.subscribers:
        csv_path = args.csv if args.csv is not None else args.out.parent / "subscribers.csv"
        write_subscribers(csv_path, args.subscribers, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
