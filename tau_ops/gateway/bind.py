"""Where the gateway listens (``HOST:PORT``) and its token's env var; imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass

from tau_ops.errors import UsageError

DEFAULT_BIND = "127.0.0.1:8080"
AUTH_TOKEN_ENV = "TAU_GATEWAY_AUTH_TOKEN"


@dataclass(frozen=True)
class BindAddress:
    """Where the gateway listens; port 0 asks the OS for a free port.

    Attributes
    ----------
    host : str
        A host name or IP address (IPv6 without brackets).
    port : int
        TCP port, 0 to 65535.

    Examples
    --------
    >>> str(BindAddress("::1", 8080)), str(BindAddress("127.0.0.1", 0))
    ('[::1]:8080', '127.0.0.1:0')
    """

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(text: str) -> BindAddress:
    """Parse ``HOST:PORT`` or ``[IPV6]:PORT`` (brackets as in RFC 3986 section 3.2.2).

    Parameters
    ----------
    text : str
        The value of ``--gateway-openresponses-bind``, e.g. ``127.0.0.1:8080``.

    Returns
    -------
    BindAddress
        Host and port.

    Raises
    ------
    UsageError
        Not ``HOST:PORT``/``[IPV6]:PORT``, an unbracketed IPv6 address, or a
        port outside 0..65535; the message names the value (exit 2).

    Examples
    --------
    >>> parse_bind(" [::1]:9000 ")
    BindAddress(host='::1', port=9000)
    >>> parse_bind("localhost:70000")
    Traceback (most recent call last):
    ...
    tau_ops.errors.UsageError: invalid gateway bind 'localhost:70000': ...
    """
    value = text.strip()
    hint = f"invalid gateway bind {text!r}: expected HOST:PORT or [IPV6]:PORT"
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":") or ":" not in host:
            raise UsageError(hint)
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or ":" in host:
            raise UsageError(hint + (" (put an IPv6 address in brackets)" if ":" in host else ""))
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(hint + " with a port from 0 to 65535")
    return BindAddress(host, int(port_text))
