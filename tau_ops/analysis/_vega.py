"""Vega, Vega-Lite and vega-embed, shipped inside the package so the report renders offline.

The three browser bundles (and each package's licence) live in
``tau_ops/analysis/vendor/``, copied byte for byte from the npm packages
pinned in :data:`BUNDLES` by ``scripts/fetch_vega.py``, which checks each
package's sha512 integrity. ``vendor/manifest.json`` records the sha256 of
every shipped file; ``tests/test_analysis_vega.py`` checks the files against it
and the Vega-Lite version against altair's schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

VENDOR = Path(__file__).with_name("vendor")
"""Folder of the shipped bundles, licences and ``manifest.json``."""


@dataclass(frozen=True)
class Bundle:
    """One npm package whose browser build the report inlines.

    Attributes
    ----------
    package : str
        npm package name.
    version : str
        Exact version (no range).
    integrity : str
        The registry's ``sha512-<base64>`` integrity of the package tarball.
    build_file : str
        The browser (UMD) build inside the tarball, relative to ``package/``.
    """

    package: str
    version: str
    integrity: str
    build_file: str

    @property
    def file(self) -> str:
        """Name of the shipped bundle in :data:`VENDOR`."""
        return f"{self.package}.min.js"

    @property
    def licence(self) -> str:
        """Name of the shipped licence file in :data:`VENDOR`."""
        return f"{self.package}.LICENSE"


BUNDLES: tuple[Bundle, ...] = (
    Bundle("vega", "6.2.0",
           ("sha512-BIwalIcEGysJdQDjeVUmMWB3e50jPDNAMfLJscjEvpu"
            "nU9bSt7X1OYnQxkg3uBwuRRI4nWfFZO9uIW910nLeGw=="),
           "build/vega.min.js"),
    Bundle("vega-lite", "6.4.1",
           ("sha512-KO3ybHNouRK4A0al/+2fN9UqgTEfxrd/ntGLY933Hg5"
            "UOYotDVQdshR3zn7OfXwQ7uj0W96Vfa5R+QxO8am3IQ=="),
           "build/vega-lite.min.js"),
    Bundle("vega-embed", "7.0.2",
           ("sha512-ZHQPWSs9mUTGJPZ5yQVhHV+OLDCoTIjR//De93vG6ig"
            "ZX1MQCVo03ePWlfWCUAnPV1IsKfeJLqA3K/Qd11bAFQ=="),
           "build/vega-embed.min.js"),
)
"""Load order: vega, then Vega-Lite (needs ``vega``), then vega-embed (needs both).

Vega 6.2.0 and vega-embed 7.0.2 are the versions vl-convert 1.9 renders image
files with, so a chart looks the same in the page and in its SVG/PNG file;
Vega-Lite 6.4.1 is altair 6's schema version.
"""

VEGA_LITE_VERSION = next(b.version for b in BUNDLES if b.package == "vega-lite")
VEGA_LITE_SCHEMA = f"https://vega.github.io/schema/vega-lite/v{VEGA_LITE_VERSION}.json"
"""The ``$schema`` every chart spec names (read by vega-embed, never fetched)."""

_SOURCE_MAP = re.compile(r"\n//# sourceMappingURL=\S+\s*$")


@cache
def inline_scripts() -> str:
    """The three bundles as ``<script>`` elements to paste into an HTML page.

    The source-map comment is dropped (the map is not shipped, so a browser's
    developer tools would look for it in vain).

    Returns
    -------
    str
        HTML, about 0.8 MB, read once per process.

    Raises
    ------
    OSError
        A bundle is missing from the installed package.

    Examples
    --------
    >>> inline_scripts().count("<script>")
    3
    """
    parts = []
    for bundle in BUNDLES:
        code = (VENDOR / bundle.file).read_text(encoding="utf-8")
        parts.append(f"<script>/* {bundle.package} {bundle.version} (BSD-3-Clause) */\n"
                     f"{_SOURCE_MAP.sub('', code)}\n</script>")
    return "\n".join(parts)
