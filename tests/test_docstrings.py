"""Issue 14 item 8: public callables and models carry numpy-style docstrings.

The names are found by introspection over ``DOC_MODULES``: a module's
``__all__`` when it has one, else the public names it defines. Extend the
constant to cover more modules once their code settles.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import tau_ops

# module -> which names: "__all__" (the module's own list), "exported" (those of its
# names that tau_ops.__all__ re-exports) or "public" (every public name it defines).
DOC_MODULES: dict[str, str] = {
    "tau_ops.identity": "__all__",
    "tau_ops.wasm": "__all__",
    "tau_ops.gateway": "__all__",
    "tau_ops.fleet": "public",
    "tau_ops.fleet_read": "public",
    "tau_ops.fleet_pool": "public",
    "tau_ops.analysis.export": "public",
    "tau_ops.analysis.spark": "public",
    "tau_ops.jsonio": "public",
    "tau_ops.errors": "exported",
    "tau_ops.clock": "exported",
    "tau_ops.contract": "exported",
    "tau_ops.channel_store": "exported",
    "tau_ops.health": "public",
    "tau_ops.models": "public",
    "tau_ops.runner": "public",
    "tau_ops.state": "public",
    "tau_ops.status": "__all__",
    "tau_ops.status_models": "public",
    "tau_ops.storage": "public",
    "tau_ops.readview": "public",
    "tau_ops.ops": "__all__",
    "tau_ops.ops.snapshot": "public",
    "tau_ops.analysis.loaders": "public",
    "tau_ops.analysis.questions": "public",
    "tau_ops.analysis": "__all__",
    "tau_ops.widgets": "__all__",
}

# Helpers that raise tau-ops errors by contract; calling one outside a try means the
# caller can raise too.
RAISING_HELPERS = frozenset({"parse_json", "read_bounded"})

# Names still waiting for their docstring; each is an expected failure, so the test
# fails (strict xfail) as soon as one is done and must be removed from here.
PENDING: frozenset[str] = frozenset({
})


def _names(module_name: str, how: str) -> list[str]:
    module = importlib.import_module(module_name)
    if how == "__all__":
        return list(module.__all__)
    defined = [n for n, v in vars(module).items()
               if not n.startswith("_") and getattr(v, "__module__", None) == module_name
               and (inspect.isfunction(v) or inspect.isclass(v))]
    if how == "exported":
        return [n for n in defined if n in tau_ops.__all__]
    return defined


def _targets() -> list[Any]:
    seen: set[int] = set()
    params = []
    for module_name, how in DOC_MODULES.items():
        module = importlib.import_module(module_name)
        for name in _names(module_name, how):
            value = getattr(module, name)
            if not (inspect.isfunction(value) or inspect.isclass(value)) or id(value) in seen:
                continue  # constants document themselves in the module docstring
            seen.add(id(value))
            qual = f"{value.__module__}.{value.__qualname__}"
            marks = [pytest.mark.xfail(strict=True, reason="docstring pending")] \
                if qual in PENDING else []
            params.append(pytest.param(value, id=qual, marks=marks))
    return params


def _section(doc: str, title: str) -> str | None:
    """The body of a numpy-style section (title, dashes underline), or None."""
    match = re.search(rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc,
                      re.M | re.S)
    return match.group(1) if match else None


def _func_node(func: Callable[..., Any]) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(func)))


def _raises(func: Callable[..., Any], seen: set[int] | None = None) -> bool:
    """Whether the body raises, or calls a raising helper or same-package function outside a try."""
    seen = set() if seen is None else seen
    if id(func) in seen:
        return False
    seen.add(id(func))
    try:
        tree = _func_node(func)
    except OSError:  # generated code (a dataclass __init__) has no source and no raise
        return False
    protected: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            for inner in node.body:
                protected.update(id(n) for n in ast.walk(inner))
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.Call) and id(node) not in protected:
            called = node.func.id if isinstance(node.func, ast.Name) else None
            if called is None:
                continue
            if called in RAISING_HELPERS:
                return True
            target = getattr(func, "__globals__", {}).get(called)
            if (inspect.isfunction(target) and target.__module__.startswith("tau_ops")
                    and _raises(target, seen)):
                return True
    return False


def _returns_value(func: Callable[..., Any]) -> bool:
    annotation = inspect.signature(func).return_annotation
    return annotation not in ("None", None, inspect.Signature.empty)


def _check_parameters(doc: str, names: list[str], what: str) -> None:
    if not names:
        return
    section = _section(doc, "Parameters") or _section(doc, "Attributes")
    assert section is not None, f"{what}: no Parameters section"
    documented = {name.strip() for line in re.findall(r"^(\*{0,2}\w+(?:, \*{0,2}\w+)*)(?: :|$)",
                                                      section, re.M)
                  for name in line.split(",")}
    missing = [n for n in names if n not in documented and n.lstrip("*") not in documented]
    assert not missing, f"{what}: parameters not documented: {missing}"


@pytest.mark.parametrize("obj", _targets())
def test_public_name_has_numpy_docstring(obj: Any) -> None:
    doc = inspect.getdoc(obj)
    assert doc, "no docstring"
    if inspect.isclass(obj) and issubclass(obj, BaseModel):
        undocumented = [n for n, f in obj.model_fields.items() if not f.description]
        assert not undocumented, f"fields without description: {undocumented}"
        assert ">>>" in (_section(doc, "Examples") or ""), "no Examples section"
        return
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return  # an error's docstring says when it is raised; the test of errors.py
        init = obj.__init__
        if inspect.isfunction(init):
            params = [p for p in inspect.signature(init).parameters if p != "self"]
            _check_parameters(doc, params, "constructor")
            if _raises(init):
                assert _section(doc, "Raises"), "constructor raises but no Raises section"
        assert ">>>" in (_section(doc, "Examples") or ""), "no Examples section"
        return
    params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
    _check_parameters(doc, params, "function")
    if _returns_value(obj):
        assert _section(doc, "Returns") or _section(doc, "Yields"), "no Returns section"
    if _raises(obj):
        assert _section(doc, "Raises"), "raises but no Raises section"
    assert ">>>" in (_section(doc, "Examples") or ""), "no Examples section"
