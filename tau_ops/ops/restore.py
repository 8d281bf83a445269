"""Restore a verified snapshot into a new or empty state dir (runbook rollback plan).

The archive is verified first (:func:`tau_ops.ops.snapshot.verify_snapshot`);
its files are then extracted into a temporary folder beside the target, each
re-hashed against the archive's manifest as it is written, and the folder is
renamed into place. Live state is never overwritten: a target that exists
and is not empty is refused before anything is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tarfile
from pathlib import Path

from pydantic import BaseModel

from tau_ops import fsguard
from tau_ops.errors import InputError, OperationFailed
from tau_ops.ops.snapshot import (
    INNER_MANIFEST,
    member_problem,
    parse_inner,
    require_verified,
    verify_snapshot,
)


class RestoreReport(BaseModel):
    """What ``tau-ops snapshot restore`` wrote."""

    archive_path: str
    state_dir: str
    file_count: int
    files: list[str]


def _check_target(state_dir: Path) -> None:
    if state_dir.is_symlink() or (state_dir.exists() and not state_dir.is_dir()):
        raise InputError(f"refusing to restore into {state_dir}: it is not a plain directory",
                         path=state_dir)
    if state_dir.is_dir() and any(state_dir.iterdir()):
        raise InputError(f"refusing to restore into {state_dir}: it is not empty (never over "
                         "live state); give a new or empty directory", path=state_dir)


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path) -> str:
    rel = member.name.split("/", 1)[1]
    source = tar.extractfile(member)
    digest = hashlib.sha256()
    with fsguard.parent_dir(staging / rel, staging, create=True) as (dfd, name):
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | fsguard.FILE_NOFOLLOW,
                     0o600, dir_fd=dfd)
        try:
            while source is not None:
                block = source.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view):]
            os.fchmod(fd, member.mode & 0o777)
            os.fsync(fd)
        finally:
            os.close(fd)
    return digest.hexdigest()


def restore_snapshot(
    archive: Path | str, state_dir: Path | str, *, manifest: Path | str | None = None
) -> RestoreReport:
    """Verify ``archive``, then extract it into ``state_dir`` (new or empty).

    Parameters
    ----------
    archive : Path or str
        A ``tau-ops snapshot`` archive.
    state_dir : Path or str
        Where to restore; must not exist, or be an empty directory.
    manifest : Path or str, optional
        The sidecar manifest (default ``<archive>.manifest.json`` when present).

    Returns
    -------
    RestoreReport
        The files restored (relative names).

    Raises
    ------
    InputError
        ``state_dir`` is not empty or not a directory; the archive is missing (exit 2).
    OperationFailed
        The archive fails verification, or changed while being restored (exit 1);
        nothing is left in ``state_dir``.
    """
    archive, state_dir = Path(archive), Path(state_dir)
    _check_target(state_dir)
    report = verify_snapshot(archive, manifest=manifest)
    require_verified(report)
    parent = Path(os.path.abspath(state_dir)).parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{state_dir.name}.restore-{secrets.token_hex(6)}"
    staging.mkdir(mode=0o755)
    written: dict[str, str] = {}
    listed: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                problem = member_problem(member)
                if problem:
                    raise OperationFailed(f"snapshot {archive} changed since it was verified: "
                                          f"{problem}")
                rel = member.name.split("/", 1)[1]
                if rel == INNER_MANIFEST:
                    handle = tar.extractfile(member)
                    data = handle.read(member.size) if handle else b""
                    listed = {k: v.sha256 for k, v in parse_inner(data).items()}
                else:
                    written[rel] = _write_member(tar, member, staging)
        if written != listed:  # what was written is what was verified, byte for byte
            raise OperationFailed(f"snapshot {archive} changed while being restored")
        _check_target(state_dir)
        if state_dir.is_dir():
            state_dir.rmdir()
        os.rename(staging, state_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    return RestoreReport(archive_path=str(archive), state_dir=str(state_dir),
                         file_count=len(written), files=sorted(written))
