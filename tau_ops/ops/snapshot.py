"""State snapshots for rollback: a verifiable ``.tar.gz`` of a whole state dir.

'Preserve .tau/deployment/ for incident analysis' (runbook, rollback plan 2).
The archive holds every regular file of the state dir under the fixed root
``state/`` plus ``SNAPSHOT-MANIFEST.json`` (SHA-256, size and mode per file);
a sidecar ``<archive>.manifest.json`` repeats it and adds the archive's own
hash, so verification catches any changed byte. Links, FIFOs and devices are
skipped with a warning when archiving, and refused when verifying, as are
member names that would leave the root. Verification bounds the expanded
size (:data:`MAX_EXPANDED_BYTES`, :data:`MAX_RATIO`) before reading a byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from tau_ops import fsguard, jsonio, storage
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.errors import InputError, OperationFailed, StateError

INNER_MANIFEST = "SNAPSHOT-MANIFEST.json"
ROOT = "state"
"""Every member of a snapshot lies under this one folder name."""
SKIP = {storage.LOCK_NAME}
MAX_EXPANDED_BYTES = 8 * 1024**3
"""Largest total of member sizes a snapshot may expand to (8 GiB)."""
MAX_RATIO = 200
"""Largest expanded/compressed size ratio (a gzip bomb reaches ~1000)."""
MAX_MEMBERS = 1_000_000
log = logging.getLogger("tau_ops")


class SnapshotFile(BaseModel):
    """One file inside a snapshot.

    Examples
    --------
    >>> SnapshotFile(path="state.json", sha256="0" * 64, size_bytes=2).mode == 0o644
    True
    """

    path: str = Field(description="Path of the file relative to the state dir (POSIX separators).")
    sha256: str = Field(description="SHA-256 of the file's content (hex).")
    size_bytes: int = Field(description="Size of the file in bytes.")
    mode: int = Field(
        default=0o644,
        description="Permission bits of the file (restored as recorded)."
    )


class SnapshotReport(BaseModel):
    """What ``tau-ops snapshot`` wrote; also the sidecar ``<archive>.manifest.json``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> work = Path(tempfile.mkdtemp())
    >>> (work / "state").mkdir()
    >>> _ = (work / "state" / "state.json").write_text("{}")
    >>> report = create_snapshot(work / "state", output=work / "snap.tar.gz", clock=lambda: 1_000)
    >>> report.file_count, [f.path for f in report.files], report.created_unix_ms
    (1, ['state.json'], 1000)
    """

    state_dir: str = Field(description="The state dir archived.")
    archive_path: str = Field(description="Path of the ``.tar.gz`` archive.")
    manifest_path: str = Field(
        description="Path of this sidecar manifest (``<archive>.manifest.json``)."
    )
    archive_sha256: str = Field(description="SHA-256 of the archive file (hex).")
    archive_size_bytes: int = Field(description="Size of the archive file in bytes.")
    created_unix_ms: int = Field(
        description="When the snapshot was taken, Unix time in milliseconds (UTC)."
    )
    file_count: int = Field(description="Files archived.")
    files: list[SnapshotFile] = Field(description="One entry per archived file.")


class VerifyReport(BaseModel):
    """What ``tau-ops snapshot --verify`` found.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> work = Path(tempfile.mkdtemp())
    >>> (work / "state").mkdir()
    >>> _ = (work / "state" / "state.json").write_text("{}")
    >>> report = create_snapshot(work / "state", output=work / "snap.tar.gz", clock=lambda: 1_000)
    >>> checked = verify_snapshot(report.archive_path)
    >>> checked.ok, checked.file_count, checked.problems
    (True, 1, [])
    """

    archive_path: str = Field(description="The archive verified.")
    manifest_path: str | None = Field(
        description="The sidecar manifest compared with; null when there was none."
    )
    ok: bool = Field(description="True when no problem was found.")
    file_count: int = Field(description="Files found in the archive.")
    problems: list[str] = Field(description="Every mismatch or refused member, one line each.")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _InnerManifest(BaseModel):
    state_dir: str
    created_unix_ms: int
    files: list[SnapshotFile]


def _read_regular(folder: Path, name: str) -> tuple[bytes, os.stat_result] | None:
    """A regular file's bytes and stat, read without following a link or blocking."""
    try:
        fd = os.open(folder / name, os.O_RDONLY | fsguard.FILE_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(), info
    finally:
        os.close(fd)


def _members(state_dir: Path) -> Iterator[tuple[str, bytes, os.stat_result]]:
    """(relative name, bytes, stat) of every regular file; links and special files skipped."""
    for root, dirs, names in os.walk(state_dir):
        folder = Path(root)
        for name in sorted(dirs):
            if (folder / name).is_symlink():
                log.warning("snapshot skips %s: it is a symbolic link", folder / name)
        dirs[:] = sorted(d for d in dirs if not (folder / d).is_symlink())
        for name in sorted(names):
            if name in SKIP or (name.startswith(".") and name.endswith(".tmp")):
                continue
            found = _read_regular(folder, name)
            if found is None:
                mode = os.lstat(folder / name).st_mode
                log.warning("snapshot skips %s: it is %s", folder / name, fsguard.kind(mode))
                continue
            yield (folder / name).relative_to(state_dir).as_posix(), found[0], found[1]


def default_archive_path(state_dir: Path, now_ms: int) -> Path:
    """``<parent>/<name>-snapshot-<UTC>.tar.gz`` beside the state dir.

    Parameters
    ----------
    state_dir : Path
        The state dir.
    now_ms : int
        The time to stamp, Unix time in milliseconds.

    Returns
    -------
    Path
        An absolute path in the state dir's parent folder.

    Examples
    --------
    >>> default_archive_path(Path("/srv/state"), 1_767_225_600_123).name
    'state-snapshot-20260101T000000.123Z.tar.gz'
    """
    stamp = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    absolute = Path(os.path.abspath(state_dir))
    return absolute.parent / f"{absolute.name}-snapshot-{stamp[:-4]}Z.tar.gz"


def create_snapshot(
    state_dir: Path | str, *, output: Path | str | None = None, clock: Clock = wall_clock_ms
) -> SnapshotReport:
    """Archive the whole state dir atomically; the state dir is only read.

    Parameters
    ----------
    state_dir : Path or str
        The state dir; read-only access is enough.
    output : Path or str, optional
        Archive path (default :func:`default_archive_path`); must be outside the state dir.
    clock : callable
        Returns unix milliseconds.

    Returns
    -------
    SnapshotReport
        What was archived: one entry (path, sha256, size, mode) per file.

    Raises
    ------
    StateError
        The state dir does not exist.
    InputError
        ``output`` is inside the state dir, or it (or its ``.manifest.json``)
        already exists: a snapshot is evidence and is never overwritten.
    OSError
        The archive or its manifest cannot be written (nothing is left half-written).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> work = Path(tempfile.mkdtemp())
    >>> (work / "state").mkdir()
    >>> _ = (work / "state" / "state.json").write_text("{}")
    >>> report = create_snapshot(work / "state", output=work / "snap.tar.gz", clock=lambda: 1_000)
    >>> Path(report.manifest_path).name
    'snap.tar.gz.manifest.json'
    """
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        raise StateError(f"state dir {state_dir} does not exist", path=state_dir)
    now_ms = clock()
    archive = Path(output) if output is not None else default_archive_path(state_dir, now_ms)
    if archive.resolve().is_relative_to(state_dir.resolve()):
        raise InputError(f"snapshot output {archive} must not be inside the state dir")
    for taken in (archive, Path(f"{archive}.manifest.json")):
        if os.path.lexists(taken):
            raise InputError(f"snapshot output {taken} already exists; snapshots are never "
                             "overwritten: choose another --output or move the old one")
    archive.parent.mkdir(parents=True, exist_ok=True)
    entries: list[SnapshotFile] = []
    fd, tmp_name = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".tmp", dir=archive.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with storage.shared_lock(state_dir), tarfile.open(tmp, "w:gz") as tar:
            for rel, data, info in _members(state_dir):
                entry = SnapshotFile(path=rel, sha256=hashlib.sha256(data).hexdigest(),
                                     size_bytes=len(data), mode=stat.S_IMODE(info.st_mode))
                entries.append(entry)
                member = tarfile.TarInfo(f"{ROOT}/{rel}")
                member.size, member.mtime, member.mode = len(data), int(info.st_mtime), entry.mode
                tar.addfile(member, io.BytesIO(data))
            inner = _InnerManifest(state_dir=str(state_dir), created_unix_ms=now_ms,
                                   files=entries).model_dump_json(indent=2).encode()
            member = tarfile.TarInfo(f"{ROOT}/{INNER_MANIFEST}")
            member.size, member.mtime, member.mode = len(inner), now_ms // 1000, 0o644
            tar.addfile(member, io.BytesIO(inner))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.link(tmp, archive)  # no-clobber: a file made meanwhile at that name is kept
    except FileExistsError:
        raise InputError(f"snapshot output {archive} already exists; snapshots are never "
                         "overwritten: choose another --output or move the old one") from None
    finally:
        tmp.unlink(missing_ok=True)
    report = SnapshotReport(
        state_dir=str(state_dir), archive_path=str(archive),
        manifest_path=str(archive) + ".manifest.json", archive_sha256=_sha256_file(archive),
        archive_size_bytes=archive.stat().st_size, created_unix_ms=now_ms,
        file_count=len(entries), files=entries,
    )
    storage.atomic_write_json(Path(report.manifest_path), report.model_dump(mode="json"))
    return report


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member may not be restored (None when it is a plain file under the root).

    Parameters
    ----------
    member : tarfile.TarInfo
        A member of a snapshot archive.

    Returns
    -------
    str or None
        One line naming the member and the problem, or None.

    Examples
    --------
    >>> member_problem(tarfile.TarInfo("state/../etc/passwd"))
    'state/../etc/passwd: not a plain relative path'
    >>> member_problem(tarfile.TarInfo("state/state.json")) is None
    True
    """
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or len(parts) < 2 or parts[0] != ROOT:
        return f"{name}: not under {ROOT}/"
    if any(part in ("", ".", "..") for part in parts[1:]) or "\\" in name:
        return f"{name}: not a plain relative path"
    if not member.isreg():
        return f"{name}: not a regular file (links, devices and FIFOs are refused)"
    return None


def _hash_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[str, bytes | None]:
    handle = tar.extractfile(member)
    digest = hashlib.sha256()
    keep = member.name.endswith("/" + INNER_MANIFEST)
    data = b""
    while handle is not None:
        block = handle.read(1 << 20)
        if not block:
            break
        digest.update(block)
        if keep:
            data += block
    return digest.hexdigest(), data if keep else None


def parse_inner(data: bytes) -> dict[str, SnapshotFile]:
    """The files an inner ``SNAPSHOT-MANIFEST.json`` lists.

    Parameters
    ----------
    data : bytes
        The member's content.

    Returns
    -------
    dict
        :class:`SnapshotFile` per relative path.

    Raises
    ------
    ValueError
        Over the size limit, not JSON under the policy, or not the manifest's shape.

    Examples
    --------
    >>> parse_inner(b'{"state_dir": "st", "created_unix_ms": 1, "files": []}')
    {}
    """
    if len(data) > jsonio.LIMITS["manifest"] * 64:
        raise ValueError("too large")
    parsed = _InnerManifest.model_validate(jsonio.parse_json(data))
    return {f.path: f for f in parsed.files}


def safe_members(
    tar: tarfile.TarFile, archive: Path, problems: list[str]
) -> Iterator[tuple[str, tarfile.TarInfo]]:
    """The members of an open snapshot that pass the safety rules, in archive order.

    A member is yielded (with its name below ``state/``) only when it is a
    regular file under the root with a plain relative name, listed once, and
    the archive's expanded size stays within :data:`MAX_EXPANDED_BYTES` and
    :data:`MAX_RATIO` times its compressed size (checked from the headers,
    before any data is read). Every refused member is appended to
    ``problems``; past the bounds nothing further is read.

    Parameters
    ----------
    tar : tarfile.TarFile
        The archive, opened for reading.
    archive : Path
        Its path (its size sets the expansion budget, bytes).
    problems : list of str
        Receives one line per refused member.

    Yields
    ------
    tuple of (str, tarfile.TarInfo)
        The relative name (``runtime-events.jsonl``) and the member.

    Examples
    --------
    >>> import io, tempfile
    >>> archive = Path(tempfile.mkdtemp()) / "s.tar.gz"
    >>> with tarfile.open(archive, "w:gz") as tar:
    ...     for name in ("state/state.json", "../evil"):
    ...         tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    >>> problems: list[str] = []
    >>> with tarfile.open(archive) as tar:
    ...     [name for name, _ in safe_members(tar, archive, problems)]
    ['state.json']
    >>> problems
    ['../evil: not under state/']
    """
    budget = min(MAX_EXPANDED_BYTES, max(archive.stat().st_size, 1 << 20) * MAX_RATIO)
    expanded = 0
    seen: set[str] = set()
    for count, member in enumerate(tar, start=1):
        expanded += member.size + 512
        if count > MAX_MEMBERS or expanded > budget:
            problems.append(f"archive expands past {budget} bytes or {MAX_MEMBERS} "
                            "members; refused without reading further")
            return
        problem = member_problem(member)
        if problem:
            problems.append(problem)
            continue
        rel = member.name.split("/", 1)[1]
        if rel in seen:
            problems.append(f"{rel}: appears more than once in the archive")
            continue
        seen.add(rel)
        yield rel, member


def _scan(archive: Path, problems: list[str]) -> tuple[dict[str, str], dict[str, SnapshotFile]]:
    """(sha256 per member path, inner manifest) with every problem appended."""
    actual: dict[str, str] = {}
    inner: dict[str, SnapshotFile] | None = None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for rel, member in safe_members(tar, archive, problems):
                sha, data = _hash_member(tar, member)
                if rel == INNER_MANIFEST:
                    try:
                        inner = parse_inner(data or b"")
                    except (ValueError, ValidationError) as exc:
                        problems.append(f"{INNER_MANIFEST} is not valid: "
                                        f"{jsonio.error_text(exc)}")
                        inner = {}
                else:
                    actual[rel] = sha
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        problems.append(f"archive cannot be read: {type(exc).__name__}: {exc}")
    if inner is None:
        problems.append(f"archive has no {INNER_MANIFEST}")
    return actual, inner or {}


def verify_snapshot(archive: Path | str, *, manifest: Path | str | None = None) -> VerifyReport:
    """Re-hash every file of an archive against its manifests; report every mismatch.

    Parameters
    ----------
    archive : Path or str
        The ``.tar.gz`` snapshot.
    manifest : Path or str, optional
        The sidecar manifest (default ``<archive>.manifest.json`` when it exists).

    Returns
    -------
    VerifyReport
        ``ok`` and every problem found; a bad archive is reported, not raised.

    Raises
    ------
    InputError
        The archive or the given sidecar manifest is missing or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> work = Path(tempfile.mkdtemp())
    >>> (work / "state").mkdir()
    >>> _ = (work / "state" / "state.json").write_text("{}")
    >>> report = create_snapshot(work / "state", output=work / "snap.tar.gz", clock=lambda: 1_000)
    >>> verify_snapshot(report.archive_path).ok
    True
    """
    archive = Path(archive)
    if not archive.is_file():
        raise InputError(f"snapshot archive {archive} does not exist", path=archive)
    sidecar = Path(manifest) if manifest is not None else Path(str(archive) + ".manifest.json")
    problems: list[str] = []
    expected: dict[str, SnapshotFile] | None = None
    if sidecar.is_file():
        try:
            recorded = SnapshotReport.model_validate(jsonio.parse_json(jsonio.read_bounded(
                sidecar, max_bytes=jsonio.LIMITS["manifest"] * 64, what="snapshot manifest")))
        except (OSError, ValueError) as exc:
            raise InputError(f"snapshot manifest {sidecar} is not valid: "
                             f"{str(exc).splitlines()[0]}", path=sidecar) from exc
        expected = {f.path: f for f in recorded.files}
        if _sha256_file(archive) != recorded.archive_sha256:
            problems.append("archive sha256 differs from the manifest")
    elif manifest is not None:
        raise InputError(f"snapshot manifest {sidecar} does not exist", path=sidecar)
    actual, inner = _scan(archive, problems)
    for label, wanted in (("archive manifest", inner), ("sidecar manifest", expected)):
        if wanted is None:
            continue
        for rel, entry in sorted(wanted.items()):
            if rel not in actual:
                problems.append(f"{rel}: listed in the {label} but missing from the archive")
            elif actual[rel] != entry.sha256:
                problems.append(f"{rel}: sha256 differs from the {label}")
        for rel in sorted(set(actual) - set(wanted)):
            problems.append(f"{rel}: in the archive but not in the {label}")
    return VerifyReport(archive_path=str(archive),
                        manifest_path=str(sidecar) if sidecar.is_file() else None,
                        ok=not problems, file_count=len(actual), problems=problems)


def require_verified(report: VerifyReport) -> None:
    """Turn a failed verification into an operation failure (exit 1).

    Parameters
    ----------
    report : VerifyReport
        What :func:`verify_snapshot` found.

    Raises
    ------
    OperationFailed
        ``report.ok`` is false; the message lists the problems.

    Examples
    --------
    >>> require_verified(VerifyReport(archive_path="a.tar.gz", manifest_path=None, ok=False,
    ...                               file_count=0, problems=["archive has no manifest"]))
    Traceback (most recent call last):
    ...
    tau_ops.errors.OperationFailed: snapshot a.tar.gz failed verification: archive has no manifest
    """
    if not report.ok:
        raise OperationFailed(f"snapshot {report.archive_path} failed verification: "
                              + "; ".join(report.problems))
