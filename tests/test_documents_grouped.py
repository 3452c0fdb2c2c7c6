"""Issue 22: a backfill group's résumé files are made durable together before the group's
commit. A file is in place under its hash only once its bytes were fsynced (else a crash could
leave a short file that a later intake takes as kept); a group that fails leaves none in place."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mailflow.intake.documents import DocumentShelf
from mailflow.mail.parse import Attachment


def attachment(n: int) -> Attachment:
    data = b"%PDF-1.4\n" + str(n).encode() * 100
    return Attachment(f"cv{n}.pdf", "application/pdf", len(data),
                      hashlib.sha256(data).hexdigest(), "2", data=data)


def test_group_files_in_place_only_as_the_group_ends(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    shelf = DocumentShelf(tmp_path)
    synced: list[str] = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(
        f"/proc/self/fd/{fd}")), fsync(fd))[1])
    files = [attachment(n) for n in range(5)]
    with shelf.grouped():
        with shelf.grouped():  # one mail's own group, inside the backfill's
            for a in files[:3]:
                shelf.keep(a, None, "2026-12-02T00:00:00Z")
        assert not any(shelf.path(a.sha256).exists() for a in files)
        for a in [*files[3:], files[0]]:  # the same résumé twice in one group: one file
            assert shelf.keep(a, None, "2026-12-02T00:00:00Z")["stored"] is True
        assert synced == []
    for a in files:
        assert shelf.path(a.sha256).read_bytes() == a.data
    assert sorted(synced[:5]) == sorted(str(shelf.path(a.sha256).with_suffix(".tmp"))
                                        for a in files)  # each file once, before its rename
    folders = {str(shelf.path(a.sha256).parent) for a in files}
    assert sorted(synced[5:]) == sorted(folders)  # then each folder once
    assert not list(tmp_path.rglob("*.tmp"))


def test_failed_group_leaves_no_file_in_place(tmp_path: Path) -> None:
    shelf = DocumentShelf(tmp_path)
    with pytest.raises(RuntimeError), shelf.grouped():
        shelf.keep(attachment(1), None, "2026-12-02T00:00:00Z")
        raise RuntimeError("the commit fails")
    assert not shelf.path(attachment(1).sha256).exists()
    document = shelf.keep(attachment(1), None, "2026-12-02T00:00:00Z")  # kept again: in place
    assert document["stored"] is True
    assert shelf.path(attachment(1).sha256).read_bytes() == attachment(1).data


def test_outside_a_group_the_file_is_in_place_at_once(tmp_path: Path) -> None:
    shelf = DocumentShelf(tmp_path)
    shelf.keep(attachment(2), None, "2026-12-02T00:00:00Z")
    assert shelf.path(attachment(2).sha256).read_bytes() == attachment(2).data
    assert not list(tmp_path.rglob("*.tmp"))
