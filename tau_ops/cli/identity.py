"""Runbook flags of the browser DID bootstrap, and the ``did-sign``/``did-verify``/``did-resolve``
subcommands for operators."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tau_ops.cli._base import Subcommand, fail, json_flag, parse, print_json, sub_parser
from tau_ops.errors import IdentifierError
from tau_ops.identity import (
    DidReport,
    bootstrap_did,
    derive_identity,
    identity_from_payload,
    load_did_document,
    load_did_payload,
    resolve_did_key,
    sign_challenge,
    verify_signature,
)
from tau_ops.identity.entropy import read_entropy

PREFIX = "--deployment-wasm-browser-did-"
FLAG_OF_FIELD = {
    "method": PREFIX + "method",
    "network": PREFIX + "network",
    "subject": PREFIX + "subject",
    "entropy": PREFIX + "entropy",
    "entropy_file": PREFIX + "entropy-file",
}
ENTROPY_REQUIRED = (
    f"entropy is required: pass {PREFIX}entropy-file FILE ('-' for stdin, or "
    f"TAU_DEPLOYMENT_WASM_BROWSER_DID_ENTROPY_FILE) or {PREFIX}entropy; "
    "there is no default, since a shared default would give everyone the same key"
)


def _identity_flags(parser: argparse._ActionsContainer, *, aliases: bool) -> None:
    """Method, network, subject, entropy: runbook names, short aliases on subcommands."""
    for name, default in (("method", "key"), ("network", "tau-devnet"),
                          ("subject", "browser-agent"), ("entropy", None)):
        names = [PREFIX + name] + ([f"--{name}"] if aliases else [])
        shown = (f" (default {default})" if default else
                 f" (required, no default; a flag shows in the process list: prefer "
                 f"{PREFIX}entropy-file)")
        parser.add_argument(*names, dest=f"did_{name}", default=default,
                            metavar=name.upper(), help=f"DID {name}{shown}")
    parser.add_argument(*([PREFIX + "entropy-file"] + (["--entropy-file"] if aliases else [])),
                        dest="did_entropy_file", metavar="FILE",
                        help="read the entropy from FILE ('-' = stdin; one trailing newline "
                        "is removed) so it stays out of the process list (recommended; "
                        "default none)")


def add_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("browser DID bootstrap (KAMN)")
    g.add_argument(PREFIX + "init", dest="did_init", action="store_true",
                   help="derive a browser/edge DID and persist its payload (default false)")
    _identity_flags(g, aliases=False)
    g.add_argument(PREFIX + "output", dest="did_output", type=Path, metavar="FILE",
                   help="payload file (default <state dir>/browser-did.json)")
    g.add_argument(PREFIX + "include-private-key", dest="did_include_private_key",
                   action="store_true",
                   help="also write the private key to the payload, file mode 0600 "
                   "(default false)")
    g.add_argument(PREFIX + "json", dest="did_json", action="store_true",
                   help="print the report as one JSON document (default false: text)")


@contextmanager
def _naming_flags() -> Iterator[None]:
    """Add the flag to an identifier error so the operator knows what to change."""
    try:
        yield
    except IdentifierError as exc:
        flag = FLAG_OF_FIELD.get(exc.field)
        if flag is None or flag in exc.message:
            raise
        raise IdentifierError(f"{exc.message} ({flag})", field=exc.field) from exc


def _require_entropy(args: argparse.Namespace) -> str | bytes:
    """The entropy from its flag, its file flag, or their ``TAU_*`` variables (one of them)."""
    entropy: str | None = args.did_entropy
    path: str | None = args.did_entropy_file
    if entropy is not None and path is not None:
        fail(f"pass one of {PREFIX}entropy and {PREFIX}entropy-file "
             "(flags or TAU_* variables), not both")
    if path is not None:
        raw = read_entropy(path)
        if not raw.strip():
            raise IdentifierError(f"entropy file {path} holds no entropy (empty or only "
                                  "whitespace)", field="entropy_file")
        return raw
    if entropy is None:
        raise IdentifierError(ENTROPY_REQUIRED, field="entropy")
    return entropy


def dispatch(args: argparse.Namespace) -> int | None:
    if not args.did_init:
        return None
    output = args.did_output or args.deployment_state_dir / "browser-did.json"
    with _naming_flags():
        report = bootstrap_did(
            method=args.did_method,
            network=args.did_network,
            subject=args.did_subject,
            entropy=_require_entropy(args),
            output_path=output,
            include_private_key=args.did_include_private_key,
        )
    if args.did_json:
        print_json(report)
    else:
        print(render_report(report))
    return 0


def render_report(report: DidReport) -> str:
    """Text form of the bootstrap report (never any private key material).

    The first line is the seed's, field for field; the lines after it are
    tau-ops 0.1's, kept for scripts that read them.
    """
    return (
        f"deployment wasm browser did: runtime={report.runtime} "
        f"profile={report.interoperability_profile} method={report.method} did={report.did} "
        f"key_id={report.key_id} fingerprint={report.fingerprint} "
        f"output_path={report.output_path or 'none'} "
        f"persisted={'true' if report.persisted else 'false'}\n"
        f"browser did: did={report.did} method={report.method} network={report.network} "
        f"subject={report.subject}\n"
        f"browser did key: key_id={report.key_id} fingerprint={report.fingerprint} "
        f"public_key_multibase={report.public_key_multibase}\n"
        f"browser did payload: persisted={'true' if report.persisted else 'false'} "
        f"output_path={report.output_path} runtime={report.runtime} "
        f"interoperability_profile={report.interoperability_profile}"
    )


def _sign(argv: list[str]) -> int:
    """``tau-ops did-sign``: sign a challenge with the key derived from the DID inputs."""
    parser = sub_parser("did-sign", "Sign a challenge with the key derived from the DID inputs.")
    _identity_flags(parser, aliases=True)
    parser.add_argument("--payload", type=Path, metavar="FILE",
                        help="sign with the private key of a payload written with "
                        f"{PREFIX}include-private-key (instead of the four inputs; "
                        "default none)")
    parser.add_argument("--challenge", required=True, metavar="TEXT",
                        help="challenge to sign, its UTF-8 bytes (required)")
    json_flag(parser, "the signature")
    args = parse(parser, argv)
    if args.payload is not None:
        if args.did_entropy is not None or args.did_entropy_file is not None:
            fail("pass --payload or the entropy, not both")
        identity = identity_from_payload(load_did_payload(args.payload))
    else:
        with _naming_flags():
            identity = derive_identity(method=args.did_method, network=args.did_network,
                                       subject=args.did_subject,
                                       entropy=_require_entropy(args))
    signature = sign_challenge(identity, args.challenge.encode("utf-8"))
    if args.json:
        print_json({"did": identity.did, "key_id": identity.key_id, "signature": signature})
    else:
        print(f"did sign: did={identity.did} key_id={identity.key_id} signature={signature}")
    return 0


def _verify(argv: list[str]) -> int:
    """``tau-ops did-verify``: check a challenge signature (exit 0 valid, 1 invalid)."""
    parser = sub_parser("did-verify", "Check a challenge signature against a DID "
                        "(exit 0 valid, 1 invalid). did:key resolves locally; "
                        "did:web needs --document.")
    parser.add_argument("--did", required=True, help="the DID that signed (required)")
    parser.add_argument("--challenge", required=True, metavar="TEXT",
                        help="the challenge that was signed, its UTF-8 bytes (required)")
    parser.add_argument("--signature", required=True, metavar="SIG",
                        help="multibase base58btc signature, z... (required)")
    parser.add_argument("--document", type=Path, metavar="FILE",
                        help="DID document, or a bootstrap payload holding one; needed for "
                        "did:web (default none)")
    json_flag(parser, "the result")
    args = parse(parser, argv)
    document = load_did_document(args.document) if args.document is not None else None
    valid = verify_signature(did=args.did, challenge=args.challenge.encode("utf-8"),
                             signature=args.signature, document=document)
    if args.json:
        print_json({"did": args.did.strip(), "valid": valid})
    else:
        print(f"did verify: did={args.did.strip()} valid={'true' if valid else 'false'}")
    return 0 if valid else 1


def _resolve(argv: list[str]) -> int:
    """``tau-ops did-resolve``: print the DID document of a did:key or of a payload file."""
    parser = sub_parser("did-resolve", "Print the DID document of an Ed25519 did:key, "
                        "or the checked document of a payload or document file.")
    parser.add_argument("did", nargs="?", help="an Ed25519 did:key (or give --payload)")
    parser.add_argument("--payload", type=Path, metavar="FILE",
                        help="a bootstrap payload (either layout) or DID document file "
                        "(default none)")
    args = parse(parser, argv)
    if (args.did is None) == (args.payload is None):
        fail("pass a did:key or --payload FILE (one of them)")
    print_json(resolve_did_key(args.did) if args.did is not None
               else load_did_document(args.payload))
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {
    "did-sign": _sign,
    "did-verify": _verify,
    "did-resolve": _resolve,
}
