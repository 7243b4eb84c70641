"""feedsvc.content.reading: one file → SourceReading in a worker, and back to PostMeta in the main
process.

What a worker sends must decode to exactly what the store's JSON of the same metadata
decodes to, and that JSON must be ``json.dumps(meta_to_dict(meta))`` byte for byte: the
store compares it to see whether a post changed.
"""

from __future__ import annotations

import json
import os
import pickle
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.config import Settings
from feedsvc.content.reading import (
    SourceReading,
    decoded_meta,
    meta_json_of,
    parse_batch,
    read_source,
)
from feedsvc.content.sources import SourceFile, scan_content
from feedsvc.models import (
    Author,
    Image,
    PostMeta,
    meta_fields,
    meta_from_dict,
    meta_from_fields,
    meta_json_from_fields,
    meta_to_dict,
)

POSTS = {
    "2024-01-02-dated-by-name.md": "---\ntitle: 이름의 날짜\ntags: [a, b]\n---\n본문\n",
    "zoned.md": "---\ntitle: x\ndate: 2024-03-04 05:06:07 +0900\nupdated: 2024-03-05\n---\nx\n",
    "toml.md": '+++\ntitle = "톰"\ndate = 2024-01-02T10:00:00Z\nimage = "/a b.png"\n+++\nx\n',
    "no-date.md": "---\ntitle: 날짜 없음\n---\n본문\n",
    "broken.md": "---\ntitle: [\n---\n본문\n",
    "author.md": '---\ntitle: "q\\"uote"\ndate: 2024-01-02\nauthor: {name: 김, email: k@x.kr}\n'
    "excerpt: <b>굵게</b> 요약\ndraft: true\n---\nx\n",
}


def _files(site_settings: Settings) -> list[SourceFile]:
    for name, text in POSTS.items():
        (site_settings.content_dir / name).write_text(text, encoding="utf-8")
    content = site_settings.content
    return scan_content(site_settings.content_dir, content.extensions, content.max_bytes).files


def test_outcomes_decode_like_the_stores_json(site_settings: Settings) -> None:
    outcomes = parse_batch(site_settings.parse_options, [(f, None) for f in _files(site_settings)])
    by_path = {o.path: o for o in outcomes}
    assert by_path["broken.md"].problem is not None
    assert by_path["no-date.md"].parsed is not None and not by_path["no-date.md"].meta_json
    dated = [o for o in outcomes if o.meta_json]
    assert len(dated) == 4
    for outcome in dated:
        meta = decoded_meta(outcome)
        from_json = meta_from_dict(json.loads(outcome.meta_json))
        assert meta == from_json
        assert repr(meta) == repr(from_json)  # the same fixed-offset time zones too
        assert outcome.meta_json == json.dumps(meta_to_dict(from_json), ensure_ascii=False)


def test_outcomes_survive_pickling_between_processes(site_settings: Settings) -> None:
    outcomes = parse_batch(site_settings.parse_options, [(f, None) for f in _files(site_settings)])
    back = pickle.loads(pickle.dumps(outcomes, pickle.HIGHEST_PROTOCOL))
    assert back == outcomes
    assert [decoded_meta(o) for o in back] == [decoded_meta(o) for o in outcomes]


def test_a_file_with_the_cached_hash_is_not_parsed(site_settings: Settings) -> None:
    file = next(f for f in _files(site_settings) if f.path == "zoned.md")
    first = parse_batch(site_settings.parse_options, [(file, None)])[0]
    again = parse_batch(site_settings.parse_options, [(file, first.content_hash)])[0]
    assert again == SourceReading(file.path, file.size, file.mtime_ns, first.content_hash)


def test_a_file_gone_since_the_scan_is_a_problem(site_settings: Settings) -> None:
    file = next(f for f in _files(site_settings) if f.path == "zoned.md")
    os.unlink(file.abspath)
    outcome = parse_batch(site_settings.parse_options, [(file, None)])[0]
    assert outcome.problem is not None
    assert outcome.problem.reason == "cannot read: No such file or directory"


def test_read_source_reads_the_whole_file_whatever_the_scan_saw(tmp_path: Path) -> None:
    path = tmp_path / "post.md"
    data = os.urandom(200_000)
    path.write_bytes(data)
    assert read_source(str(path), len(data)) == data
    assert read_source(str(path), 10) == data  # it grew after the scan
    assert read_source(str(path), 300_000) == data  # it shrank
    path.write_bytes(b"")
    assert read_source(str(path), 0) == b""


_TEXT = st.text(max_size=20)  # any code point: controls, quotes, surrogates, Korean
_MOMENTS = st.datetimes(
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from(
        [
            UTC,
            timezone(timedelta(hours=9)),
            timezone(timedelta(hours=-5, minutes=-30)),
            ZoneInfo("Asia/Seoul"),
            ZoneInfo("America/New_York"),
        ]
    ),
)


@st.composite
def metas(draw: st.DrawFn) -> PostMeta:
    published = draw(_MOMENTS)
    updated = draw(st.one_of(st.just(published), _MOMENTS))
    author = draw(st.one_of(st.none(), st.builds(Author, _TEXT, st.one_of(st.none(), _TEXT))))
    length = st.one_of(st.none(), st.integers(0, 2**40))
    image = draw(st.one_of(st.none(), st.builds(Image, _TEXT, st.one_of(st.none(), _TEXT), length)))
    return PostMeta(
        draw(_TEXT),
        draw(_TEXT),
        draw(_TEXT),
        draw(_TEXT),
        draw(_TEXT),
        published,
        updated,
        draw(st.sampled_from(["front_matter", "file_name", "first_seen"])),
        tuple(draw(st.lists(_TEXT, max_size=3))),
        tuple(draw(st.lists(_TEXT, max_size=3))),
        author,
        draw(st.one_of(st.none(), _TEXT)),
        image,
        draw(st.one_of(st.none(), _TEXT)),
        draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None)
@given(metas())
def test_meta_json_is_json_dumps_of_meta_to_dict_byte_for_byte(meta: PostMeta) -> None:
    expected = json.dumps(meta_to_dict(meta), ensure_ascii=False)
    assert meta_json_from_fields(meta_fields(meta)) == expected
    assert meta_json_of(meta) == expected


@settings(max_examples=300, deadline=None)
@given(metas())
def test_meta_fields_decode_like_the_json(meta: PostMeta) -> None:
    from_json = meta_from_dict(json.loads(json.dumps(meta_to_dict(meta), ensure_ascii=False)))
    fields = pickle.loads(pickle.dumps(meta_fields(meta)))
    decoded = meta_from_fields(fields)
    assert decoded == from_json
    assert repr(decoded) == repr(from_json)


def test_dates_with_the_same_offset_share_one_zone_object() -> None:
    from feedsvc.models import moment_of

    a = moment_of("2024-05-31T09:00:00+09:00")
    b = moment_of("2024-06-01T10:30:00+09:00")
    c = moment_of("2024-06-01T01:30:00+00:00")
    assert a.tzinfo is b.tzinfo and a.tzinfo is not c.tzinfo
    assert b == c and a < b and b.isoformat() == "2024-06-01T10:30:00+09:00"
    assert moment_of("2024-06-01T10:30:00").tzinfo is None


def test_asset_sizes_look_each_missing_folder_up_once(tmp_path: Path) -> None:
    from feedsvc.config import ParseOptions
    from feedsvc.content.reading import AssetSizes

    (tmp_path / "img" / "부산").mkdir(parents=True)
    (tmp_path / "img" / "부산" / "a.png").write_bytes(b"x" * 10)
    (tmp_path / "img" / "b.png").write_bytes(b"y" * 3)
    site = "https://news.example.kr/"
    sizes = AssetSizes(ParseOptions(site, "UTC", "/{slug}/", "utf-8", 1000, str(tmp_path)))
    assert sizes(site + "img/%EB%B6%80%EC%82%B0/a.png") == 10
    assert sizes(site + "img/부산/a.png?v=2") == 10
    assert sizes(site + "img/b.png") == 3
    assert sizes(site + "img/none.png") is None  # its folder exists: looked at
    assert sizes(site + "없는/a.png") is None
    assert sizes.folders[site + "없는"] is False  # the next file there is not looked for
    assert sizes(site + "없는/b.png") is None
    assert sizes(site + "img/../img/b.png") == 3
    assert sizes(site + "../etc/passwd") is None  # never outside the assets folder
    assert sizes("https://elsewhere.example/img/b.png") is None
