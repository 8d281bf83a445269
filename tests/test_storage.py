"""Atomic writes, torn-line repair, rotation and path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tau_ops import storage


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.json"
    storage.atomic_write_json(target, {"a": 1})
    storage.atomic_write_json(target, {"b": 2})
    assert target.read_text() == '{\n  "b": 2\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.json"]


def test_atomic_write_applies_mode(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    storage.atomic_write_text(target, "k", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600


def test_append_repairs_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":')
    storage.append_lines(path, ['{"c":3}'])
    assert path.read_text() == '{"a":1}\n{"c":3}\n'
    records, invalid = storage.read_jsonl(path)
    assert (records, invalid) == ([{"a": 1}, {"c": 3}], 0)


def test_repair_of_file_without_any_newline_empties_it(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"partial')
    assert storage.repair_torn_tail(path) == 0
    assert path.read_bytes() == b""


def test_read_jsonl_counts_invalid_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"ok":1}\n\nnot json\n[1,2]\n{"ok":2}\n')
    assert storage.read_jsonl(path) == ([{"ok": 1}, {"ok": 2}], 2)


def test_rotation_shifts_backups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "10")
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "3")
    path = tmp_path / "e.jsonl"
    for n in range(5):
        storage.rotate_if_needed(path, 8)
        storage.append_lines(path, [f'"line{n}"'])
    assert [p.read_text() for p in storage.rotated_files(path)] == [
        '"line2"\n', '"line3"\n', '"line4"\n']


def test_rotated_files_ignores_unrelated_names(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    for name in ("e.jsonl", "e.jsonl.1", "e.jsonl.10", "e.jsonl.bak", "e.jsonl.0"):
        (tmp_path / name).write_text("")
    assert [p.name for p in storage.rotated_files(path)] == ["e.jsonl.10", "e.jsonl.1", "e.jsonl"]


@pytest.mark.parametrize(("raw", "safe"), [
    ("edge-wasm", "edge-wasm"), ("a/b", "a_b"), ("..", "__"), (".", "_"), ("", "_"),
    ("x y:z", "x_y_z"), ("é", "_"),
])
def test_safe_component(raw: str, safe: str) -> None:
    assert storage.safe_component(raw) == safe


def test_lock_serializes_holders(tmp_path: Path) -> None:
    import threading
    import time

    order: list[str] = []

    def hold(name: str) -> None:
        with storage.state_lock(tmp_path):
            order.append(f"{name}-in")
            time.sleep(0.05)
            order.append(f"{name}-out")

    threads = [threading.Thread(target=hold, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order[0][0] == order[1][0] and order[2][0] == order[3][0]
    assert os.path.exists(tmp_path / storage.LOCK_NAME)
