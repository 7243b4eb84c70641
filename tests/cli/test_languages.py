"""The command line speaks the site's language (issue 17, item 3), from the one message
catalogue: a Korean site's `build`, `check`, `status`, `subscribers` and `digest send
--dry-run` print Korean, an English site's English; ``$FEEDSVC_LANGUAGE`` overrides the
site's; a command without a config (`init`, a config that cannot be read) follows the
terminal's locale; counts take the language's plural forms and times read as its people
say them. And no message the CLI prints is written in the code instead of the catalogue.

The other tests read the CLI in English (tests/conftest.py sets ``$FEEDSVC_LANGUAGE``);
these remove it first."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedsvc.cli.main import main
from feedsvc.cli.words import in_time, when_label
from feedsvc.config import ParseOptions
from feedsvc.messages import LANGUAGE_ENV, Texts, command_language, terminal_language
from tests.conftest import REPO, run_feedsvc

HANGUL = re.compile(r"[\uac00-\ud7a3]")
KOREAN, ENGLISH = Texts("ko"), Texts("en")


@pytest.fixture(autouse=True)
def no_language_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither $FEEDSVC_LANGUAGE nor a terminal language: the site's decides."""
    for name in (LANGUAGE_ENV, "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)


def make_site(folder: Path, language: str) -> Path:
    """A site in ``language`` with two posts (one a draft), a store beside it; its config."""
    (folder / "content").mkdir(parents=True)
    for name, front in (
        ("2024-06-01-부산.md", 'title: "부산 소식"\ndate: 2024-06-01\ncategories: [부산]'),
        ("초안.md", 'title: "아직 쓰는 중"\ndraft: true'),
    ):
        (folder / "content" / name).write_text(f"---\n{front}\n---\n\n본문\n", encoding="utf-8")
    config = folder / "config.yaml"
    config.write_text(
        f"site:\n  title: 부산 시정 소식\n  url: https://news.example.kr/\n"
        f"  language: {language}\n  timezone: Asia/Seoul\n"
        "storage:\n  url: sqlite:///state.db\n",
        encoding="utf-8",
    )
    return config


def feedsvc(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


@pytest.fixture
def korean_site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "블로그", "ko-KR")


def test_a_korean_site_builds_checks_and_shows_its_status_in_korean(korean_site: Path) -> None:
    built = feedsvc(korean_site, "build")
    assert built.exit_code == 0, built.output
    assert built.stdout.startswith("파일 2개: 새로 읽음 2, 발행 1편, 초안 1편, 렌더링 1편; ")
    assert "오류 0개, 경고 0개 (" in built.stdout and "초)" in built.stdout
    assert "feedsvc: 새 저장소를 만들었습니다 (리비전 " in built.stderr

    (korean_site.parent / "content" / "깨진.md").write_text("---\ntitle: [열린\n---\n")
    checked = feedsvc(korean_site, "check")
    assert checked.exit_code == 1
    assert "파일 3개 검사: 발행 가능 1편, 초안 1편, 오류 1개, 경고 0개" in checked.stdout
    assert re.search(r"깨진\.md:\d+: 오류: ", checked.stderr), checked.stderr

    rebuilt = feedsvc(korean_site, "build")
    assert rebuilt.exit_code == 1
    assert "feedsvc: 파일 1개를 발행하지 못했습니다. 위의 내용을 확인하세요" in rebuilt.stderr

    status = feedsvc(korean_site, "status")
    assert status.exit_code == 0, status.output
    for line in ("사이트: 부산 시정 소식", "구독자: 없음", "콘텐츠 문제: 오류 1개, 경고 0개"):
        assert line in status.stdout
    assert re.search(
        r"마지막 빌드: \d{4}-\d\d-\d\d \d\d:\d\d KST \((\d+초|\d+분) 전\)", status.stdout
    )
    assert "last build" not in status.stdout


def test_a_korean_sites_subscribers_and_digest_dry_run_speak_korean(korean_site: Path) -> None:
    feedsvc(korean_site, "build")
    added = feedsvc(korean_site, "subscribers", "add", "minji@example.kr", "--name", "김민지")
    assert added.exit_code == 0, added.output
    assert added.stdout == (
        "추가함: minji@example.kr (김민지): 구독 중, 매일, 모든 카테고리, 사이트 시간대\n"
    )
    listed = feedsvc(korean_site, "subscribers", "list", "--format", "table")
    assert "이메일" in listed.stdout and "구독자 1명" in listed.stdout
    unknown = feedsvc(korean_site, "subscribers", "add", "jisu@example.kr", "--category", "축제")
    assert "feedsvc: 경고: --category: 카테고리 '축제'이(가) 달린 발행된 글이 없습니다" in (
        unknown.stderr
    )
    assert "(사이트의 카테고리: 부산)" in unknown.stderr
    refused = feedsvc(korean_site, "subscribers", "add", "민지@시험.test")
    assert refused.exit_code == 2
    assert "쓸 수 있는 이메일 주소가 아닙니다" in refused.stderr
    assert ".test 주소를 받으려면 --allow-test-domains를 주세요" in refused.stderr

    dry = feedsvc(korean_site, "digest", "send", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "시험 실행: 보낼 다이제스트가 없어 아무것도 보내지 않습니다." in dry.stdout
    assert re.search(r"다음 발송은 일간 다이제스트 \(Asia/Seoul\), .* KST \(.*후\)", dry.stdout)


def test_an_english_site_speaks_english(tmp_path: Path) -> None:
    config = make_site(tmp_path, "en-GB")
    built = feedsvc(config, "build")
    assert built.stdout.startswith("2 files, 2 parsed, 1 published, 1 draft, 1 rendered; ")
    assert not HANGUL.search(built.stdout)
    status = feedsvc(config, "status")
    assert "subscribers: none" in status.stdout and "content problems: 0 errors" in status.stdout


def test_a_site_in_a_language_without_a_catalogue_speaks_english(tmp_path: Path) -> None:
    built = feedsvc(make_site(tmp_path, "fr"), "build")
    assert built.stdout.startswith("2 files, 2 parsed, 1 published")


@pytest.mark.parametrize(("chosen", "expected"), [("en", "2 files, "), ("ko", "파일 2개: ")])
def test_feedsvc_language_overrides_the_sites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: str, expected: str
) -> None:
    """An operator who reads another language than the site's."""
    monkeypatch.setenv(LANGUAGE_ENV, chosen)
    site_language = "ko" if chosen == "en" else "en"
    built = feedsvc(make_site(tmp_path, site_language), "build")
    assert built.stdout.startswith(expected), built.stdout


def test_init_follows_the_terminals_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    made = CliRunner().invoke(main, ["init", "새사이트"])
    assert made.exit_code == 0, made.output
    assert f"만듦: {Path('새사이트') / 'config.yaml'}" in made.stdout
    assert "다음 단계: cd 새사이트 && feedsvc run" in made.stdout
    again = CliRunner().invoke(main, ["init", "새사이트"])
    assert f"그대로 둠: {Path('새사이트') / 'config.yaml'} (이미 있음)" in again.stdout
    monkeypatch.setenv("LC_ALL", "C")  # LC_ALL wins over LANG; C is English
    english = CliRunner().invoke(main, ["init", "other"])
    assert "next: cd other && feedsvc run" in english.stdout


def test_a_config_that_cannot_be_read_is_reported_in_the_terminals_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("site:\n  language: ko\nfeeds:\n  limit: 많이\n", encoding="utf-8")
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    korean = feedsvc(config, "build")
    assert korean.exit_code == 2
    assert korean.stderr.startswith(f"feedsvc: {config}의 설정이 잘못되었습니다:\n  - feeds.limit")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    english = feedsvc(config, "build")
    assert english.stderr.startswith(f"feedsvc: invalid configuration in {config}:")


def test_without_a_config_file_the_terminals_language_is_spoken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded defaults say site.language en, which nobody chose."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    checked = CliRunner().invoke(main, ["check"])
    assert "파일 0개 검사" in checked.stdout


def test_a_subprocess_speaks_the_sites_language(tmp_path: Path) -> None:
    """``python -m feedsvc``, as the console script runs (the catalogue from its .mo)."""
    result = run_feedsvc("--config", str(make_site(tmp_path, "ko")), "build")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("파일 2개: ")


@pytest.mark.parametrize(
    ("tag", "environ", "expected"),
    [
        ("ko-KR", {}, "ko-KR"),
        ("ko", {LANGUAGE_ENV: "en"}, "en"),
        ("en", {LANGUAGE_ENV: " ko "}, "ko"),
        (None, {"LANG": "ko_KR.UTF-8"}, "ko"),
        (None, {"LC_ALL": "C", "LANG": "ko_KR.UTF-8"}, "en"),
        (None, {"LC_MESSAGES": "ko_KR.eucKR@euro", "LANG": "en_US"}, "ko"),
        (None, {"LC_ALL": "", "LANG": "POSIX"}, "en"),
        (None, {}, "en"),
        (None, {LANGUAGE_ENV: "ko", "LANG": "en_US.UTF-8"}, "ko"),
    ],
)
def test_which_language_the_command_line_speaks(
    tag: str | None, environ: dict[str, str], expected: str
) -> None:
    assert command_language(tag, environ) == expected


def test_the_terminals_language_is_its_primary_subtag() -> None:
    assert terminal_language({"LANG": "ko_KR.UTF-8"}) == "ko"
    assert terminal_language({"LANG": "fr_FR"}) == "fr"  # read as English by Texts
    assert Texts(terminal_language({"LANG": "fr_FR"})).code == "en"


@pytest.mark.parametrize(
    ("key", "count", "english", "korean"),
    [
        ("cli.count.posts", 1, "1 post", "글 1편"),
        ("cli.count.posts", 2, "2 posts", "글 2편"),
        ("cli.count.posts", 0, "0 posts", "글 0편"),
        ("cli.count.files", 10000, "10,000 files", "파일 10,000개"),
        ("cli.count.errors", 1, "1 error", "오류 1개"),
        ("cli.count.subscribers", 21, "21 subscribers", "구독자 21명"),
    ],
)
def test_counts_follow_each_languages_plural_rules(
    key: str, count: int, english: str, korean: str
) -> None:
    assert ENGLISH.plural(key, count) == english
    assert KOREAN.plural(key, count) == korean


@pytest.mark.parametrize(
    ("seconds", "english", "korean"),
    [
        (3 * 3600 + 12 * 60 + 30, "in 3 h 12 min", "3시간 12분 후"),
        (2 * 86400 + 4 * 3600, "in 2 d 4 h", "2일 4시간 후"),
        (86400, "in 1 d", "1일 후"),
        (40, "in 40 s", "40초 후"),
        (-180, "3 min ago", "3분 전"),
        (-(3600 + 60), "1 h 1 min ago", "1시간 1분 전"),
    ],
)
def test_relative_times_in_both_languages(seconds: int, english: str, korean: str) -> None:
    assert in_time(ENGLISH, timedelta(seconds=seconds)) == english
    assert in_time(KOREAN, timedelta(seconds=seconds)) == korean


def test_a_moment_in_the_sites_zone_in_korean() -> None:
    now = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    later = datetime(2024, 6, 1, 23, 0, tzinfo=UTC)
    assert when_label(KOREAN, later, "Asia/Seoul", now) == "2024-06-02 08:00 KST (20시간 후)"


# --- the build's problems ------------------------------------------------------------------

BROKEN = {
    "날짜.md": "---\ntitle: 날짜\ndate: soon\n---\n본문\n",
    "빈.md": "",
    "닫힘.md": "---\ntitle: 안 닫힘\n본문\n",
    "태그.md": "---\ntitle: 태그\ntags: {a: 1}\n---\n본문\n",
}
KOREAN_PROBLEMS = (
    "날짜.md:3: 오류: 'date'의 값 'soon'은(는) 날짜가 아닙니다. 2024-01-02, 2024-01-02 10:00, "
    "2024-01-02T10:00:00+09:00처럼 쓰세요",
    "빈.md: 오류: 파일이 비어 있습니다. 글을 쓰거나 파일을 지우세요",
    "닫힘.md:1: 오류: '---'(으)로 연 프런트 매터가 닫히지 않았습니다. 그 뒤에 '---' 줄을 넣으세요",
    "태그.md:3: 오류: 'tags'의 값이 매핑입니다. 목록이나 쉼표로 나눈 문자열(으)로 고치세요",
)


def test_a_korean_sites_build_problems_are_korean_on_every_build(korean_site: Path) -> None:
    """Read now, or kept in the store from an earlier build (the file unchanged), or shown
    by `status`: the same Korean lines, each naming its file and line."""
    content = korean_site.parent / "content"
    for name, text in BROKEN.items():
        (content / name).write_text(text, encoding="utf-8")
    first = feedsvc(korean_site, "build")
    again = feedsvc(korean_site, "build")
    checked = feedsvc(korean_site, "check")
    status = feedsvc(korean_site, "status")
    for result in (first, again, checked):
        assert result.exit_code == 1
        for line in KOREAN_PROBLEMS:
            assert any(shown.endswith(line) for shown in result.stderr.splitlines()), (
                line,
                result.stderr,
            )
    assert again.stdout.startswith("파일 6개: 새로 읽음 0, ")
    for line in KOREAN_PROBLEMS:
        assert any(shown.endswith(line) for shown in status.stdout.splitlines()), status.stdout


LIQUID_AND_DEEP = {
    "2024-06-02-반복.md": "---\ntitle: 반복\ndate: 2024-06-02\n---\n\n앞\n\n"
    "{% for post in site.posts %}{{ post.title }}{% endfor %}\n\n{{ site.없음 }}\n",
    "2024-06-03-깊음.md": "---\ntitle: 깊음\ndate: 2024-06-03\n---\n\n" + "<div>\n" * 300,
}
LIQUID_AND_DEEP_KOREAN = (
    "반복.md:8: 경고: Liquid '{% for post in site.posts %}'은(는) 여기서 실행하지 않습니다: "
    "'{% endfor %}'(8행)까지 모두 지웠습니다. 그 결과를 글에 직접 쓰세요",
    "반복.md:10: 경고: 알 수 없는 Liquid 변수 'site.없음': 지웠습니다. config.yaml의 "
    "site.vars(또는 사이트의 _config.yml)에 설정하세요",
    "깊음.md:",
    "오류: HTML이 256단계보다 깊게 중첩됩니다 (닫지 않은 태그?). 태그를 닫으세요. "
    "이 글은 발행하지 않습니다",
)


def test_liquid_warnings_and_refused_html_are_korean_too(korean_site: Path) -> None:
    """The Liquid pass's warnings and the too-deep HTML refusal come from the catalogue
    like every other problem about a post, in `build` and `check` alike."""
    with korean_site.open("a", encoding="utf-8") as config:
        config.write('content:\n  liquid: "on"\n')
    content = korean_site.parent / "content"
    for name, text in LIQUID_AND_DEEP.items():
        (content / name).write_text(text, encoding="utf-8")
    for command in ("build", "check"):
        result = feedsvc(korean_site, command)
        assert result.exit_code == 1, result.output
        for expected in LIQUID_AND_DEEP_KOREAN:
            assert expected in result.stderr, (command, expected, result.stderr)
        assert "not run here" not in result.stderr and "nests deeper" not in result.stderr


def test_the_same_problems_in_english_are_the_logs_words(
    korean_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$FEEDSVC_LANGUAGE=en shows the English that logs, JSON and the store keep."""
    monkeypatch.setenv(LANGUAGE_ENV, "en")
    content = korean_site.parent / "content"
    for name, text in BROKEN.items():
        (content / name).write_text(text, encoding="utf-8")
    shown = feedsvc(korean_site, "build").stderr
    assert "날짜.md:3: error: 'date' value 'soon' is not a date; write it as 2024-01-02" in shown
    assert "빈.md: error: the file is empty; write the post or delete the file" in shown
    assert (
        "태그.md:3: error: 'tags' must be a list or a comma-separated string, not a mapping"
        in shown
    )
    for line in shown.splitlines():
        assert not HANGUL.search(line.partition(": error: ")[2]), line


def test_a_problem_reads_its_english_without_the_catalogue() -> None:
    """The pure core reads no file: a problem's English is in its Message."""
    from feedsvc.content.front_matter import decode_source
    from feedsvc.errors import ContentError

    with pytest.raises(ContentError) as caught:
        decode_source("빈.md", b"  \n", make_options())
    assert caught.value.reason == "the file is empty; write the post or delete the file"
    assert caught.value.message is not None
    assert (
        KOREAN.message(caught.value.message) == "파일이 비어 있습니다. 글을 쓰거나 파일을 지우세요"
    )


def make_options() -> ParseOptions:
    from tests.conftest import make_settings

    return make_settings(Path(".")).parse_options


# --- no prose in the code ---------------------------------------------------------------

# Calls that print for people, and the keyword their text may come as.
PRINTING = {"echo", "secho", "fail", "warn", "confirm", "prompt", "error_line", "warning_line"}
# (file, line text) of literals that are not prose: none so far.
NOT_PROSE: set[tuple[str, str]] = set()


def _literal_offences(expr: ast.expr) -> list[str]:
    """Text with letters that ``expr`` writes itself, not through the catalogue: a string
    literal, the fixed parts of an f-string, either side of ``+``/``%``/``if … else``.
    Calls (``texts("id")``) and names are left alone: they bring their own words."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value] if any(c.isalpha() for c in expr.value) else []
    if isinstance(expr, ast.JoinedStr):
        fixed = "".join(str(v.value) for v in expr.values if isinstance(v, ast.Constant))
        return [fixed] if any(c.isalpha() for c in fixed) else []
    if isinstance(expr, ast.BinOp):
        return _literal_offences(expr.left) + _literal_offences(expr.right)
    if isinstance(expr, ast.IfExp):
        return _literal_offences(expr.body) + _literal_offences(expr.orelse)
    return []


def test_the_command_line_prints_no_text_written_in_the_code() -> None:
    """Every click.echo / fail / warn / click.confirm / click.prompt in feedsvc/cli gets
    catalogue text (``texts("id", …)``) or values (paths, tab-separated rows), never a
    sentence of its own: such a line would stay English on a Korean site."""
    offences = []
    for path in sorted((REPO / "feedsvc" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in PRINTING:
                continue
            texts = [
                *node.args[:2],
                *(k.value for k in node.keywords if k.arg in ("message", "text")),
            ]
            for text in texts:
                for found in _literal_offences(text):
                    if (path.name, found) not in NOT_PROSE:
                        offences.append(f"{path.relative_to(REPO)}:{node.lineno}: {found!r}")
    assert offences == [], "text for people belongs in feedsvc/locales/*.po"


def test_the_scan_finds_a_sentence_written_in_the_code() -> None:
    tree = ast.parse('click.echo(f"{n} files written")\nfail("bad", 2)\nclick.echo(f"{a}\\t{b}")')
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    found = [text for call in calls for arg in call.args[:1] for text in _literal_offences(arg)]
    assert found == [" files written", "bad"]
