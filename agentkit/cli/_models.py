"""``agentkit models ...``: list, pull, locate and inspect GGUF models.

Progress bars and notes go to stderr; stdout carries only the result, so
``llama-cli -m "$(agentkit models path qwen2.5-coder-0.5b-instruct)"`` works.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..models._catalog import (
    CatalogEntry,
    get_entry,
    list_models,
    models_dir,
    pull_model,
    resolve_model,
)
from ..models._gguf import GGUFInfo, inspect_gguf


def register(sub: Any) -> None:
    """Add the ``models`` command group to the top-level subparsers."""
    models: argparse.ArgumentParser = sub.add_parser(
        "models",
        help="list, download and inspect GGUF models",
        description="Catalog models are cached in $AGENTKIT_MODELS "
        "(default ~/.cache/agentkit/models). Any path to a .gguf file works too.",
    )
    models.set_defaults(handler=lambda _args: _help(models))
    cmds = models.add_subparsers(dest="models_command", metavar="COMMAND")

    p = cmds.add_parser("list", help="the catalog, with what is cached")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_list)

    p = cmds.add_parser("pull", help="download and verify catalog models")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=_pull)

    p = cmds.add_parser("path", help="print the local file of a model, pulling it if needed")
    p.add_argument("model", metavar="NAME_OR_PATH")
    p.add_argument("--no-pull", action="store_true", help="fail instead of downloading")
    p.set_defaults(handler=_path)

    p = cmds.add_parser(
        "info",
        help="what a GGUF file's header says, or what a server serves and supports",
        description="NAME_OR_PATH_OR_URL: a catalog name, a .gguf file, or a server "
        "(http://host:port/v1, optionally #model) to probe.",
    )
    p.add_argument("model", metavar="NAME_OR_PATH_OR_URL")
    p.add_argument("--no-pull", action="store_true", help="fail instead of downloading")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding the server's API key"
    )
    p.set_defaults(handler=_info)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _list(args: argparse.Namespace) -> int:
    entries = list_models()
    if args.json:
        rows = [_entry_json(e) for e in entries]
        print(json.dumps({"models_dir": str(models_dir()), "models": rows}, indent=2))
        return 0
    table = [("NAME", "PARAMS", "QUANT", "SIZE", "CACHED")]
    for e in entries:
        cached = "yes" if e.is_cached() else "no"
        table.append((e.name, e.parameters_label, e.quantization, _mb(e.size_bytes), cached))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\ncache: {models_dir()}")
    return 0


def _entry_json(e: CatalogEntry) -> dict[str, Any]:
    return {
        "name": e.name,
        "parameters": e.parameters,
        "quantization": e.quantization,
        "size_bytes": e.size_bytes,
        "cached": e.is_cached(),
        "path": str(e.path),
        "description": e.description,
        "sources": [s.describe() for s in e.sources],
    }


def _pull(args: argparse.Namespace) -> int:
    # Unknown names fail before anything is downloaded, not after the first gigabyte.
    entries = [get_entry(name) for name in args.names]
    for entry in entries:
        started = time.monotonic()
        path = pull_model(entry.name, progress=not args.quiet, force=args.force)
        print(f"{entry.name}: {path} ({time.monotonic() - started:.1f} s)")
    return 0


def _path(args: argparse.Namespace) -> int:
    print(resolve_model(args.model, pull=not args.no_pull, progress=True))
    return 0


def _info(args: argparse.Namespace) -> int:
    if args.model.strip().lower().startswith(("http://", "https://")):
        return _server_info(args)
    info = inspect_gguf(resolve_model(args.model, pull=not args.no_pull, progress=True))
    if args.json:
        print(json.dumps(_info_json(info), indent=2))
        return 0
    template = f"yes ({len(info.chat_template or ''):,} chars)" if info.has_chat_template else "no"
    rows = [
        ("file", str(info.path)),
        ("size", f"{info.file_size:,} bytes ({_mb(info.file_size)})"),
        ("format", f"GGUF v{info.version}"),
        ("architecture", info.architecture or "?"),
        ("name", info.model_name or "?"),
        ("parameters", f"{info.parameter_count:,}"),
        ("quantization", info.file_type or "?"),
        ("context", f"{info.context_length:,} tokens" if info.context_length else "?"),
        ("tensors", str(info.tensor_count)),
        ("chat template", template),
    ]
    for key, value in rows:
        print(f"{key:<14}{value}")
    return 0


def _info_json(info: GGUFInfo) -> dict[str, Any]:
    return {
        "path": str(info.path),
        "file_size": info.file_size,
        "version": info.version,
        "architecture": info.architecture,
        "model_name": info.model_name,
        "parameter_count": info.parameter_count,
        "quantization": info.file_type,
        "context_length": info.context_length,
        "tensor_count": info.tensor_count,
        "has_chat_template": info.has_chat_template,
        "chat_template": info.chat_template,
    }


_CONSTRAINT = {
    "llama-server": "GBNF grammar on /completion, prompt rendered by agentkit",
    "vllm": "structured_outputs grammar on /v1/chat/completions",
    "openai": "plain tools field, parsed leniently and validated",
}


def _server_info(args: argparse.Namespace) -> int:
    """Probe a server: what it is, what it serves, which constraint features it offers."""
    from ..models._http import RemoteConfig
    from ..models._openai import RemoteModel, parse_remote_spec

    url, wanted = parse_remote_spec(args.model)
    model = RemoteModel(url, wanted, config=RemoteConfig(api_key_env=args.api_key_env))
    info = model.server()  # probes; a model name it does not serve is an error here
    if args.json:
        print(json.dumps(_server_json(info), indent=2))
        return 0
    rows = [
        ("server", info.base_url),
        ("kind", info.kind + (f" ({info.version})" if info.version else "")),
        ("models", ", ".join(m.id for m in info.models) or "(the server lists none)"),
    ]
    for m in info.models:
        size = f"{m.parameters:,} parameters" if m.parameters else "size not reported"
        ctx = f", trained for {m.context_length:,} tokens" if m.context_length else ""
        rows.append(("", f"{m.id}: {size}{ctx}"))
    if info.context_size:
        per = f" per slot, {info.slots} slots" if info.slots else ""
        rows.append(("context", f"{info.context_size:,} tokens{per}"))
    if info.kind == "llama-server":
        rows.append(("chat template", "yes" if info.chat_template else "no (ChatML fallback)"))
    rows.append(("features", ", ".join(info.features)))
    rows.append(("tool calls", _CONSTRAINT[info.kind]))
    for key, value in rows:
        print(f"{key:<14}{value}")
    return 0


def _server_json(info: Any) -> dict[str, Any]:
    return {
        "base_url": info.base_url,
        "kind": info.kind,
        "version": info.version,
        "models": [
            {"id": m.id, "parameters": m.parameters, "context_length": m.context_length}
            for m in info.models
        ],
        "context_size": info.context_size,
        "slots": info.slots,
        "has_chat_template": bool(info.chat_template),
        "features": list(info.features),
        "tool_calls": _CONSTRAINT[info.kind],
    }
