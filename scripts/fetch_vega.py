"""Fetch the Vega, Vega-Lite and vega-embed browser bundles the report inlines, reproducibly.

For each package pinned in ``tau_ops.analysis._vega.BUNDLES`` this runs
``npm pack NAME@VERSION`` (the npm client and its configured registry), checks
the tarball against the pinned sha512 integrity, and copies the browser build
and the licence byte for byte into ``tau_ops/analysis/vendor/``; then it writes
``vendor/manifest.json`` (version, integrity and sha256 of every shipped file).
A bundle holding ``</script`` or ``<!--`` (which would end or confuse an inline
script) is refused.

    python scripts/fetch_vega.py           # fetch and write
    python scripts/fetch_vega.py --check   # fetch and compare, write nothing
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tau_ops.analysis._vega import BUNDLES, VENDOR, Bundle  # noqa: E402
from tau_ops.jsonio import parse_json  # noqa: E402

LICENCE_NAMES = ("package/LICENSE", "package/LICENSE.md", "package/LICENSE.txt")


def _pack(bundle: Bundle, into: Path) -> Path:
    done = subprocess.run(
        ["npm", "pack", f"{bundle.package}@{bundle.version}", "--json", "--silent",
         "--pack-destination", str(into)],
        capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"npm pack {bundle.package}@{bundle.version} failed: {done.stderr}")
    answer = parse_json(done.stdout)
    if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], dict):
        raise SystemExit(f"npm pack gave an unexpected answer: {done.stdout[:200]}")
    return into / str(answer[0]["filename"])


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _extract(bundle: Bundle, tarball: Path) -> dict[str, bytes]:
    data = tarball.read_bytes()
    if _integrity(data) != bundle.integrity:
        raise SystemExit(f"{tarball.name}: integrity {_integrity(data)} is not the pinned "
                         f"{bundle.integrity}")
    with tarfile.open(tarball, "r:gz") as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}

        def read(name: str) -> bytes:
            handle = archive.extractfile(members[name])
            assert handle is not None
            return handle.read()

        code = read(f"package/{bundle.build_file}")
        licence = next((read(n) for n in LICENCE_NAMES if n in members), None)
    if licence is None:
        raise SystemExit(f"{tarball.name}: no licence file")
    lowered = code.lower()
    if b"</script" in lowered or b"<!--" in code:
        raise SystemExit(f"{bundle.build_file}: cannot be inlined in a <script> element")
    return {bundle.file: code, bundle.licence: licence}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the shipped files instead of writing them")
    args = parser.parse_args()
    files: dict[str, bytes] = {}
    manifest: dict[str, object] = {"packages": [], "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for bundle in BUNDLES:
            got = _extract(bundle, _pack(bundle, Path(tmp)))
            files.update(got)
            manifest["packages"].append(  # type: ignore[attr-defined]
                {"package": bundle.package, "version": bundle.version,
                 "integrity": bundle.integrity, "build_file": bundle.build_file,
                 "files": sorted(got)})
    manifest["files"] = {name: hashlib.sha256(data).hexdigest()
                         for name, data in sorted(files.items())}
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    if args.check:
        stale = [n for n, d in files.items()
                 if not (VENDOR / n).is_file() or (VENDOR / n).read_bytes() != d]
        for name in stale:
            print(f"differs: {VENDOR / name}")
        return 1 if stale else 0
    VENDOR.mkdir(exist_ok=True)
    for name, data in files.items():
        (VENDOR / name).write_bytes(data)
        print(f"wrote {VENDOR / name} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
