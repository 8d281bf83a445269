"""State snapshots for rollback: a verifiable ``.tar.gz`` of a whole state dir.

'Preserve .tau/deployment/ for incident analysis' (runbook, rollback plan 2).
The archive holds every file of the state dir plus ``SNAPSHOT-MANIFEST.json``
(SHA-256 and size per file); a sidecar ``<archive>.manifest.json`` repeats it
and adds the archive's own hash, so verification catches any changed byte.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from tau_ops import storage
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.errors import InputError, OperationFailed, StateError

INNER_MANIFEST = "SNAPSHOT-MANIFEST.json"
SKIP = {storage.LOCK_NAME}


class SnapshotFile(BaseModel):
    """One file inside a snapshot."""

    path: str
    sha256: str
    size_bytes: int


class SnapshotReport(BaseModel):
    """What ``tau-ops snapshot`` wrote."""

    state_dir: str
    archive_path: str
    manifest_path: str
    archive_sha256: str
    archive_size_bytes: int
    created_unix_ms: int
    file_count: int
    files: list[SnapshotFile]


class VerifyReport(BaseModel):
    """What ``tau-ops snapshot --verify`` found."""

    archive_path: str
    manifest_path: str | None
    ok: bool
    file_count: int
    problems: list[str]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(state_dir: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(state_dir):
        dirs.sort()
        for name in sorted(names):
            if name in SKIP or (name.startswith(".") and name.endswith(".tmp")):
                continue
            found.append(Path(root) / name)
    return found


@contextlib.contextmanager
def _consistent(state_dir: Path) -> Iterator[None]:
    # Hold the runner's lock if a runner ever created it, so no cycle commits
    # mid-snapshot; never create files in the state dir ourselves.
    if (state_dir / storage.LOCK_NAME).exists():
        with storage.state_lock(state_dir):
            yield
    else:
        yield


def default_archive_path(state_dir: Path, now_ms: int) -> Path:
    """``<parent>/<name>-snapshot-<UTC>.tar.gz`` beside the state dir."""
    stamp = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return state_dir.parent / f"{state_dir.name}-snapshot-{stamp[:-4]}Z.tar.gz"


def create_snapshot(
    state_dir: Path | str, *, output: Path | str | None = None, clock: Clock = wall_clock_ms
) -> SnapshotReport:
    """Archive the whole state dir atomically; the state dir is only read."""
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        raise StateError(f"state dir {state_dir} does not exist", path=state_dir)
    now_ms = clock()
    archive = Path(output) if output is not None else default_archive_path(state_dir, now_ms)
    if archive.resolve().is_relative_to(state_dir.resolve()):
        raise InputError(f"snapshot output {archive} must not be inside the state dir")
    archive.parent.mkdir(parents=True, exist_ok=True)
    entries: list[SnapshotFile] = []
    fd, tmp_name = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".tmp", dir=archive.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _consistent(state_dir), tarfile.open(tmp, "w:gz") as tar:
            for path in _files(state_dir):
                rel = path.relative_to(state_dir).as_posix()
                data = path.read_bytes()
                entries.append(SnapshotFile(path=rel, sha256=hashlib.sha256(data).hexdigest(),
                                            size_bytes=len(data)))
                info = tarfile.TarInfo(f"{state_dir.name}/{rel}")
                info.size, info.mtime, info.mode = len(data), int(path.stat().st_mtime), 0o644
                tar.addfile(info, io.BytesIO(data))
            inner = json.dumps({"state_dir": str(state_dir), "created_unix_ms": now_ms,
                                "files": [e.model_dump() for e in entries]}, indent=2).encode()
            info = tarfile.TarInfo(f"{state_dir.name}/{INNER_MANIFEST}")
            info.size, info.mtime = len(inner), now_ms // 1000
            tar.addfile(info, io.BytesIO(inner))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    report = SnapshotReport(
        state_dir=str(state_dir), archive_path=str(archive),
        manifest_path=str(archive) + ".manifest.json", archive_sha256=_sha256_file(archive),
        archive_size_bytes=archive.stat().st_size, created_unix_ms=now_ms,
        file_count=len(entries), files=entries,
    )
    storage.atomic_write_json(Path(report.manifest_path), report.model_dump(mode="json"))
    return report


def verify_snapshot(archive: Path | str, *, manifest: Path | str | None = None) -> VerifyReport:
    """Re-hash every file of an archive against its manifests; report every mismatch."""
    archive = Path(archive)
    if not archive.is_file():
        raise InputError(f"snapshot archive {archive} does not exist", path=archive)
    sidecar = Path(manifest) if manifest is not None else Path(str(archive) + ".manifest.json")
    problems: list[str] = []
    expected: dict[str, SnapshotFile] | None = None
    if sidecar.is_file():
        try:
            recorded = SnapshotReport.model_validate_json(sidecar.read_bytes())
        except ValueError as exc:
            raise InputError(f"snapshot manifest {sidecar} is not valid: {exc}") from exc
        expected = {f.path: f for f in recorded.files}
        if _sha256_file(archive) != recorded.archive_sha256:
            problems.append("archive sha256 differs from the manifest")
    elif manifest is not None:
        raise InputError(f"snapshot manifest {sidecar} does not exist", path=sidecar)
    actual: dict[str, str] = {}
    inner: dict[str, SnapshotFile] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                data = handle.read() if handle else b""
                rel = member.name.split("/", 1)[1] if "/" in member.name else member.name
                if rel == INNER_MANIFEST:
                    inner = {f["path"]: SnapshotFile.model_validate(f)
                             for f in json.loads(data)["files"]}
                else:
                    actual[rel] = hashlib.sha256(data).hexdigest()
    except (tarfile.TarError, OSError, EOFError, ValueError, KeyError) as exc:
        problems.append(f"archive cannot be read: {type(exc).__name__}: {exc}")
    for label, wanted in (("archive manifest", inner), ("sidecar manifest", expected or {})):
        for rel, entry in sorted(wanted.items()):
            if rel not in actual:
                problems.append(f"{rel}: listed in the {label} but missing from the archive")
            elif actual[rel] != entry.sha256:
                problems.append(f"{rel}: sha256 differs from the {label}")
        for rel in sorted(set(actual) - set(wanted)) if wanted else []:
            problems.append(f"{rel}: in the archive but not in the {label}")
    if not inner and not problems:
        problems.append(f"archive has no {INNER_MANIFEST}")
    return VerifyReport(archive_path=str(archive),
                        manifest_path=str(sidecar) if sidecar.is_file() else None,
                        ok=not problems, file_count=len(actual), problems=problems)


def require_verified(report: VerifyReport) -> None:
    """Turn a failed verification into an operation failure (exit 1)."""
    if not report.ok:
        raise OperationFailed(f"snapshot {report.archive_path} failed verification: "
                              + "; ".join(report.problems))
