"""Starting the gateway: ``TAU_TRANSPORT_MODE=gateway tau-ops`` or ``tau-ops gateway serve``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tau_ops.cli._base import (
    Subcommand,
    clock_skew_flag,
    fail,
    parse,
    stale_after_flag,
    state_dir_flag,
    sub_parser,
)
from tau_ops.health import DEFAULT_CLOCK_SKEW_TOLERANCE_MS, DEFAULT_STALE_AFTER_MS

TRANSPORT_MODES = ("gateway",)


# starlette and uvicorn load only when the gateway really starts (fast CLI start-up);
# the bind default lives in tau_ops.gateway and is resolved there.
AUTH_TOKEN_ENV = "TAU_GATEWAY_AUTH_TOKEN"


def _bind_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--gateway-openresponses-bind", default=None, metavar="HOST:PORT",
                        help="address the gateway listens on (default 127.0.0.1:8080; "
                             "port 0 picks a free port)")


def add_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("gateway")
    g.add_argument("--transport-mode", metavar="MODE",
                   help="'gateway' serves the HTTP gateway for --deployment-state-dir "
                   "(default none)")
    _bind_flag(g)


def dispatch(args: argparse.Namespace) -> int | None:
    mode = args.transport_mode
    if mode is None or not mode.strip():
        return None
    if mode.strip() != "gateway":
        fail(f"unsupported transport mode {mode!r} (--transport-mode / TAU_TRANSPORT_MODE "
             f"takes {', '.join(TRANSPORT_MODES)})")
    stale = getattr(args, "deployment_stale_after_ms", DEFAULT_STALE_AFTER_MS)
    skew = getattr(args, "deployment_clock_skew_tolerance_ms", DEFAULT_CLOCK_SKEW_TOLERANCE_MS)
    return _serve(args.deployment_state_dir, args.gateway_openresponses_bind, int(stale),
                  int(skew))


def _serve(state_dir: Path, bind_text: str | None, stale_after_ms: int,
           skew_tolerance_ms: int = DEFAULT_CLOCK_SKEW_TOLERANCE_MS) -> int:
    from tau_ops.gateway import DEFAULT_BIND, BindAddress, parse_bind, serve

    bind = parse_bind(bind_text or DEFAULT_BIND)
    token = os.environ.get(AUTH_TOKEN_ENV)
    if token is not None and not token.strip():
        fail(f"{AUTH_TOKEN_ENV} is set but empty; unset it to serve without authentication")

    def announce(bound: BindAddress) -> None:
        url_host = f"[{bound.host}]" if ":" in bound.host else bound.host
        print(f"gateway listening: host={bound.host} port={bound.port} "
              f"url=http://{url_host}:{bound.port}/gateway/status state_dir={state_dir} "
              f"auth={'bearer' if token else 'none'}", flush=True)

    def request_line(line: str) -> None:
        sys.stderr.write(f"info: {line}\n")  # stderr is line-buffered: one write per request

    serve(state_dir=state_dir, bind=bind, auth_token=token, stale_after_ms=stale_after_ms,
          skew_tolerance_ms=skew_tolerance_ms, on_listening=announce, request_log=request_line)
    return 0


def _gateway_command(argv: list[str]) -> int:
    """``tau-ops gateway serve``: serve status, health and metrics over HTTP."""
    parser = sub_parser("gateway", "Serve deployment status, health and metrics over HTTP "
                                   f"(bearer token from {AUTH_TOKEN_ENV} when set). "
                                   "Actions: serve.")
    parser.add_argument("action", choices=["serve"], help="serve: run the HTTP gateway")
    state_dir_flag(parser)
    _bind_flag(parser)
    stale_after_flag(parser)
    clock_skew_flag(parser)
    args = parse(parser, argv)
    return _serve(args.deployment_state_dir, args.gateway_openresponses_bind,
                  args.deployment_stale_after_ms, args.deployment_clock_skew_tolerance_ms)


SUBCOMMANDS: dict[str, Subcommand] = {"gateway": _gateway_command}
