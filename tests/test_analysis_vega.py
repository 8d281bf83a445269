"""The Vega bundles shipped for the report: pinned, unmodified, inlinable, matching altair."""

from __future__ import annotations

import hashlib

from tau_ops.analysis._vega import BUNDLES, VEGA_LITE_SCHEMA, VENDOR, inline_scripts
from tau_ops.jsonio import parse_json


def _manifest() -> dict[str, object]:
    value = parse_json((VENDOR / "manifest.json").read_bytes())
    assert isinstance(value, dict)
    return value


def test_shipped_files_are_the_pinned_packages_unmodified() -> None:
    manifest = _manifest()
    assert [(p["package"], p["version"], p["integrity"], p["build_file"])
            for p in manifest["packages"]] == [  # type: ignore[attr-defined]
        (b.package, b.version, b.integrity, b.build_file) for b in BUNDLES]
    shipped = sorted(p.name for p in VENDOR.iterdir())
    assert shipped == sorted([*manifest["files"], "manifest.json"])  # type: ignore[list-item]
    for name, digest in manifest["files"].items():  # type: ignore[attr-defined]
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    for bundle in BUNDLES:
        assert "Redistribution and use in source and binary forms" in \
            (VENDOR / bundle.licence).read_text()


def test_versions_match_altair_and_vl_convert() -> None:
    """The page draws with the Vega-Lite altair validates against, and with the Vega and
    vega-embed vl-convert renders image files with: one chart looks the same everywhere."""
    import altair as alt
    import vl_convert as vlc

    versions = {b.package: b.version for b in BUNDLES}
    assert VEGA_LITE_SCHEMA == alt.SCHEMA_URL
    assert f"v{versions['vega-lite']}" == alt.SCHEMA_VERSION
    assert versions["vega"] == vlc.get_vega_version()
    assert versions["vega-embed"] == vlc.get_vega_embed_version()
    assert versions["vega-lite"].rsplit(".", 1)[0] in vlc.get_vegalite_versions()


def test_bundles_can_be_inlined_in_a_script_element() -> None:
    html = inline_scripts()
    assert html.count("<script>") == 3 and html.count("</script>") == 3
    assert "<!--" not in html and "sourceMappingURL" not in html
    for bundle in BUNDLES:
        assert f"/* {bundle.package} {bundle.version} (BSD-3-Clause) */" in html
