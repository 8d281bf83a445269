"""The public API: every exported name resolves, ``__all__`` is sorted, imports stay light."""

from __future__ import annotations

import subprocess
import sys

import tau_ops


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert tau_ops.__all__ == sorted(tau_ops.__all__, key=lambda n: (n[0].islower(), n))
    for name in tau_ops.__all__:
        assert getattr(tau_ops, name) is not None, name


def test_public_names_have_docstrings() -> None:
    for name in tau_ops.__all__:
        value = getattr(tau_ops, name)
        if callable(value):
            assert value.__doc__, name


HEAVY = ("polars", "altair", "duckdb", "pyarrow", "wasmtime", "starlette", "uvicorn",
         "ipywidgets")


def test_cli_startup_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from tau_ops.cli import _features, build_parser\n"
        "build_parser(_features())\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == ""


def test_cli_constants_repeat_the_library_values() -> None:
    from tau_ops import gateway
    from tau_ops.cli import _features, build_parser
    from tau_ops.cli import gateway as cli_gateway

    assert cli_gateway.AUTH_TOKEN_ENV == gateway.AUTH_TOKEN_ENV
    parser = build_parser(_features())
    (bind,) = [a for a in parser._actions if "--gateway-openresponses-bind" in a.option_strings]
    assert f"default {gateway.DEFAULT_BIND};" in (bind.help or "")
