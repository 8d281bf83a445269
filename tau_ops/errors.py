"""The one exception hierarchy of tau-ops; every error carries its exit code.

    TauOpsError                 base; exit_code 2 unless a branch says otherwise
    ├── UsageError              a flag or argument is wrong (exit 2)
    ├── InputError              an input file or value is unreadable or invalid (exit 2)
    │   ├── FixtureError        a fixture is refused; names the case and field
    │   ├── ManifestError       a WASM manifest cannot be loaded
    │   ├── WasmModuleError     a file is not a valid WebAssembly module
    │   └── IdentifierError     a DID network/subject/entropy is invalid; names the field
    ├── StateError              the state dir cannot be read or written (exit 2)
    └── OperationFailed         the operation ran and failed (exit 1)
        ├── ContractViolation   an observed case result differs from the expected one
        ├── NonCompliantModule  a WASM module breaks its runtime constraint profile
        └── RunnerPaused        the runner is paused by an operator

Foreign errors (pydantic, OSError, wasmtime, cryptography) are translated into
these where they enter, with ``raise ... from``, so callers catch one family.

Exit statuses of the ``tau-ops`` command: 0 success; 1 :class:`OperationFailed`
(a verdict); 2 every other :class:`TauOpsError` (bad usage or input);
:data:`EXIT_INTERNAL_ERROR` (70, ``EX_SOFTWARE`` of ``sysexits.h``) anything
else, which is a bug: a crash never reads as a verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

EXIT_OK: Final = 0
"""The command did what was asked and the verdict (if any) is success."""
EXIT_FAILED: Final = 1
"""The operation ran and its verdict is failure (:class:`OperationFailed`)."""
EXIT_USAGE: Final = 2
"""Bad usage or bad input: one ``error:`` line, nothing changed."""
EXIT_INTERNAL_ERROR: Final = 70
"""An internal error (a bug in tau-ops or a dependency), ``EX_SOFTWARE``."""


class TauOpsError(Exception):
    """Base of every error tau-ops raises on purpose."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(TauOpsError):
    """A command-line flag or API argument is wrong."""


class InputError(TauOpsError):
    """An input file or value is unreadable or invalid."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


class FixtureError(InputError):
    """A deployment fixture is refused as a whole; nothing was written."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        case_id: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, path=path)
        self.case_id = case_id
        self.field = field


class ManifestError(InputError):
    """A WASM deliverable manifest cannot be read or does not fit the format."""


class WasmModuleError(InputError):
    """A file is not WebAssembly, is truncated, or does not validate."""


class IdentifierError(InputError):
    """A DID input (network, subject, entropy, method) is invalid."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class StateError(TauOpsError):
    """The state directory cannot be read, locked or written."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


class OperationFailed(TauOpsError):
    """The operation ran to a verdict, and the verdict is failure."""

    exit_code = EXIT_FAILED


class ContractViolation(OperationFailed):
    """An observed case result differs from the fixture's expectation."""

    def __init__(self, message: str, *, case_id: str, field: str) -> None:
        super().__init__(message)
        self.case_id = case_id
        self.field = field


class NonCompliantModule(OperationFailed):
    """A WASM module breaks its runtime constraint profile; nothing was written."""

    def __init__(self, message: str, *, reason_codes: list[str]) -> None:
        super().__init__(message)
        self.reason_codes = list(reason_codes)


class RunnerPaused(OperationFailed):
    """An operator paused the runner for this state dir."""
