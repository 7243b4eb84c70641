"""The content scan, and the rescan of only the paths a watcher reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feedsvc.content.sources import Scan, rescan, scan_content

EXTENSIONS = (".md", ".html", ".txt")
MAX_BYTES = 1000


def full(root: Path) -> Scan:
    return scan_content(root, EXTENSIONS, MAX_BYTES)


def again(previous: Scan, root: Path, *changed: Path) -> Scan | None:
    return rescan(previous, root, [str(p) for p in changed], EXTENSIONS, MAX_BYTES)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "부산-소식.md").write_text("가", encoding="utf-8")
    (folder / "about.html").write_text("<p>나</p>", encoding="utf-8")
    return folder


def test_an_edited_file_gets_its_new_size_and_mtime(root: Path) -> None:
    before = full(root)
    edited = root / "2024" / "부산-소식.md"
    edited.write_text("가나다라", encoding="utf-8")
    os.utime(edited, ns=(1, 1_700_000_000_000_000_000))
    assert again(before, root, edited) == full(root)


def test_new_and_deleted_files(root: Path) -> None:
    before = full(root)
    (root / "2024" / "해운대.md").write_text("새 글", encoding="utf-8")
    (root / "about.html").unlink()
    after = again(before, root, root / "2024" / "해운대.md", root / "about.html")
    assert after == full(root)
    assert after is not None and [f.path for f in after.files] == [
        "2024/부산-소식.md",
        "2024/해운대.md",
    ]


def test_editor_temp_files_hidden_files_and_other_extensions_are_ignored(root: Path) -> None:
    before = full(root)
    (root / "2024" / ".부산-소식.md.swp").write_text("x")
    (root / "_drafts").mkdir()
    (root / "_drafts" / "초안.md").write_text("x")
    (root / "notes.docx").write_text("x")
    changed = [
        root / "2024" / ".부산-소식.md.swp",
        root / "_drafts" / "초안.md",
        root / "notes.docx",
    ]
    assert again(before, root, *changed) == full(root) == before


def test_a_file_grown_too_big_becomes_a_problem_and_back(root: Path) -> None:
    before = full(root)
    big = root / "about.html"
    big.write_bytes(b"x" * (MAX_BYTES + 1))
    after = again(before, root, big)
    assert after == full(root)
    assert after is not None and [p.path for p in after.problems] == ["about.html"]
    big.write_text("작아짐", encoding="utf-8")
    assert again(after, root, big) == full(root)


@pytest.mark.parametrize("case", ["new folder", "deleted folder", "symlink", "outside", "root"])
def test_what_only_a_full_walk_can_tell(root: Path, tmp_path: Path, case: str) -> None:
    before = full(root)
    if case == "new folder":
        (root / "2025").mkdir()
        (root / "2025" / "a.md").write_text("x")
        changed = root / "2025"
    elif case == "deleted folder":
        for child in (root / "2024").iterdir():
            child.unlink()
        (root / "2024").rmdir()
        changed = root / "2024"
    elif case == "symlink":
        (root / "link.md").symlink_to(tmp_path / "elsewhere.md")
        changed = root / "link.md"
    elif case == "outside":
        changed = tmp_path / "other.md"
    else:
        changed = root
    assert again(before, root, changed) is None


def test_a_file_reached_through_a_symlinked_folder_needs_a_full_walk(root: Path) -> None:
    (root / "mirror").symlink_to(root / "2024")
    before = full(root)
    (root / "2024" / "부산-소식.md").write_text("바뀜", encoding="utf-8")
    assert again(before, root, root / "mirror" / "부산-소식.md") is None


def test_a_rescan_says_which_paths_it_looked_at(root: Path) -> None:
    before = full(root)
    assert before.touched is None
    (root / "새 글.md").write_text("x", encoding="utf-8")
    after = again(before, root, root / "새 글.md", root / ".hidden.md")
    assert after is not None and after.touched == frozenset({"새 글.md"})
    assert after.find("새 글.md") is not None and after.find("없는 글.md") is None


def test_underscore_files_and_folders_are_skipped_but_jekylls_posts_folder(root: Path) -> None:
    """Astro's _templates/, Hugo's _index.md, any _folder, like _drafts/; _posts/ is read."""
    before = full(root)
    written = {
        "_templates/글-양식.md": "x",
        "2024/_partials/머리말.md": "x",
        "_index.md": "x",
        "2024/_초안.md": "x",
        "_posts/_drafts/초안.md": "x",
    }
    for rel, text in written.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    assert again(before, root, *(root / rel for rel in written)) == full(root) == before
    (root / "_posts" / "2024-01-02-부산.md").write_text("x", encoding="utf-8")
    (root / "blog" / "_posts").mkdir(parents=True)
    (root / "blog" / "_posts" / "2024-01-03-해운대.md").write_text("x", encoding="utf-8")
    assert [f.path for f in full(root).files] == [
        "2024/부산-소식.md",
        "_posts/2024-01-02-부산.md",
        "about.html",
        "blog/_posts/2024-01-03-해운대.md",
    ]
    edited = root / "_posts" / "2024-01-02-부산.md"
    edited.write_text("바뀜", encoding="utf-8")
    assert again(full(root), root, edited) == full(root)


def test_a_content_folder_that_is_posts_itself_is_read(tmp_path: Path) -> None:
    posts = tmp_path / "_posts"
    posts.mkdir()
    (posts / "2024-01-02-a.md").write_text("x")
    (posts / "_drafts").mkdir()
    (posts / "_drafts" / "b.md").write_text("x")
    assert [f.path for f in full(posts).files] == ["2024-01-02-a.md"]
