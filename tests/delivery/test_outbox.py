"""outbox: each message becomes one .eml file, written atomically, named by Message-ID."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feedsvc.delivery.mime import parse_message
from feedsvc.delivery.outbox import OutboxBackend, eml_name
from feedsvc.errors import DeliveryError
from feedsvc.storage.delivery_claims import Claimed

MESSAGE = (
    "From: news@example.kr\r\nTo: minji@example.kr\r\n"
    "Subject: =?utf-8?b?67aA7IKw?=\r\nMessage-ID: <7.42.abc@example.kr>\r\n\r\n본문\r\n"
).encode()


def claimed(message_id: str = "<7.42.abc@example.kr>", data: bytes = MESSAGE) -> Claimed:
    return Claimed(
        delivery_id=3,
        subscriber_id=42,
        email="minji@example.kr",
        message_id=message_id,
        message=data,
        attempts=1,
    )


def test_a_message_becomes_one_eml_file_named_by_message_id(tmp_path: Path) -> None:
    OutboxBackend(tmp_path / "outbox").send(claimed())
    files = os.listdir(tmp_path / "outbox")
    assert files == ["7.42.abc@example.kr.eml"]
    data = (tmp_path / "outbox" / files[0]).read_bytes()
    assert data == MESSAGE
    assert parse_message(data)["Subject"] == "부산"


def test_sending_again_rewrites_the_same_file(tmp_path: Path) -> None:
    backend = OutboxBackend(tmp_path)
    backend.send(claimed(data=b"first"))
    backend.send(claimed(data=MESSAGE))
    assert os.listdir(tmp_path) == ["7.42.abc@example.kr.eml"]
    assert (tmp_path / "7.42.abc@example.kr.eml").read_bytes() == MESSAGE


def test_file_names_are_safe() -> None:
    assert eml_name(claimed("<../../etc/passwd@x>")) == ".._.._etc_passwd@x.eml"
    assert eml_name(claimed("")) == "delivery-3.eml"
    assert eml_name(claimed("<부산@x>")) == "__@x.eml"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_folder_is_a_temporary_error(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(DeliveryError, match=r"delivery\.outbox_dir") as caught:
        OutboxBackend(folder).send(claimed())
    assert caught.value.temporary


def test_a_folder_that_is_a_file_is_a_temporary_error(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("not a folder", encoding="utf-8")
    with pytest.raises(DeliveryError, match=r"cannot write to the outbox folder") as caught:
        OutboxBackend(tmp_path / "outbox").send(claimed())
    assert caught.value.temporary
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_no_eml_file_is_there_until_the_message_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader watching the folder for *.eml (a test, a mail viewer) never opens half a
    message: while the bytes are being written, no file of the folder ends in .eml."""
    folder = tmp_path / "보낼편지함"
    seen_while_writing: list[list[str]] = []
    real_fsync = os.fsync

    def fsync_and_look(fd: int) -> None:
        seen_while_writing.append(sorted(os.listdir(folder)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    OutboxBackend(folder).send(claimed())
    assert len(seen_while_writing) == 1
    assert seen_while_writing[0] and not any(n.endswith(".eml") for n in seen_while_writing[0])
    assert os.listdir(folder) == ["7.42.abc@example.kr.eml"]
