"""altair, imported without the IRI grammar it never needs (start-up cost).

altair imports jsonschema, whose format checker builds the ``rfc3987_syntax``
IRI grammar at import when that package is installed: measured at about 80%
of ``import altair`` (3.3 s instead of 15.9 s on the loaded reference
machine). tau-ops never validates IRIs, and jsonschema skips the ``iri``
format when the package is absent, so unless something already imported
it, it is marked absent before altair is imported.
"""

from __future__ import annotations

import sys

if "rfc3987_syntax" not in sys.modules and "altair" not in sys.modules:
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]

import altair as alt  # noqa: E402

__all__ = ["alt"]
