"""What an OpenAI-compatible server is and offers, asked once over HTTP.

Three kinds are told apart, because each constrains tool calls its own way:

- **llama-server** (llama.cpp) answers ``GET /props`` with its chat template and slot
  settings. agentkit renders the prompt itself with that template and sends it to
  ``/completion`` with a GBNF ``grammar``: the same prompt bytes, grammar and parsing as
  the in-process tier, and a prompt that grows by appending, so the server's slot cache
  reuses the prefix.
- **vLLM** answers ``GET /version`` and lists its models as ``owned_by: vllm``; calls are
  constrained with ``structured_outputs: {"grammar": ...}`` (vLLM 0.10 and later; 0.12
  removed the older ``guided_grammar`` field).
- anything else gets the plain ``tools`` field and agentkit's lenient parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .._errors import ModelNotFoundError, RemoteModelError, ServerUnreachableError
from ._http import HttpClient

__all__ = ["ServedModel", "ServerInfo", "ServerKind", "match_model", "probe_server", "turn_openers"]

ServerKind = Literal["llama-server", "vllm", "openai"]

FEATURES: dict[ServerKind, tuple[str, ...]] = {
    "llama-server": ("grammar", "json_schema", "logprobs", "cached_tokens", "tokenize"),
    "vllm": ("structured_outputs", "tools", "logprobs", "cached_tokens", "tokenize"),
    "openai": ("tools",),
}
"""Constraint and accounting features each kind offers (``tools`` on llama-server needs
``--jinja``, which agentkit does not rely on)."""


@dataclass(frozen=True)
class ServedModel:
    """One model a server lists under ``/v1/models``."""

    id: str
    owned_by: str = ""
    parameters: int | None = None
    context_length: int | None = None


@dataclass(frozen=True)
class ServerInfo:
    """What ``probe_server`` learnt about a server."""

    base_url: str
    kind: ServerKind
    models: tuple[ServedModel, ...]
    context_size: int | None = None
    """Tokens one request may use (llama-server: per slot)."""
    slots: int | None = None
    chat_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    adds_bos: bool = False
    """Whether the server puts BOS in front of a text prompt itself."""
    version: str | None = None
    features: tuple[str, ...] = field(default=())


def probe_server(http: HttpClient) -> ServerInfo:
    """Ask the server what it is, what it serves and what it supports."""
    models = _models(http)
    props = _optional(http, http.url("/props", root=True))
    if isinstance(props, dict) and "default_generation_settings" in props:
        return _llama_server(http, props, models)
    version = _optional(http, http.url("/version", root=True))
    is_vllm = any(m.owned_by == "vllm" for m in models)
    if is_vllm or (isinstance(version, dict) and "version" in version and models):
        contexts = [m.context_length for m in models if m.context_length]
        return ServerInfo(
            base_url=http.base_url,
            kind="vllm",
            models=models,
            context_size=min(contexts) if contexts else None,
            version=str(version.get("version")) if isinstance(version, dict) else None,
            features=FEATURES["vllm"],
        )
    return ServerInfo(
        base_url=http.base_url, kind="openai", models=models, features=FEATURES["openai"]
    )


def _optional(http: HttpClient, url: str) -> Any:
    """A GET whose failure (404, not JSON) only means the server is of another kind."""
    try:
        return http.get(url)
    except ServerUnreachableError:
        raise
    except (RemoteModelError, ModelNotFoundError):
        return None


def _models(http: HttpClient) -> tuple[ServedModel, ...]:
    body = http.get(http.url("/models"))
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        return ()
    out = []
    for row in rows:
        if not isinstance(row, dict) or "id" not in row:
            continue
        meta = row.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        params = meta.get("n_params")
        context = row.get("max_model_len") or meta.get("n_ctx_train")
        out.append(
            ServedModel(
                id=str(row["id"]),
                owned_by=str(row.get("owned_by", "")),
                parameters=int(params) if isinstance(params, int | float) and params else None,
                context_length=int(context) if isinstance(context, int) else None,
            )
        )
    return tuple(out)


def _llama_server(
    http: HttpClient, props: dict[str, Any], models: tuple[ServedModel, ...]
) -> ServerInfo:
    settings = props.get("default_generation_settings") or {}
    n_ctx = settings.get("n_ctx")
    # An empty prompt tokenized "with specials" is [BOS] exactly when the server adds one.
    probe = http.post(http.url("/tokenize", root=True), {"content": "", "add_special": True})
    tokens = probe.get("tokens") if isinstance(probe, dict) else None
    return ServerInfo(
        base_url=http.base_url,
        kind="llama-server",
        models=models,
        context_size=int(n_ctx) if isinstance(n_ctx, int) and n_ctx > 0 else None,
        slots=int(props["total_slots"]) if isinstance(props.get("total_slots"), int) else None,
        chat_template=str(props.get("chat_template") or "") or None,
        bos_token=str(props.get("bos_token") or ""),
        eos_token=str(props.get("eos_token") or ""),
        adds_bos=bool(tokens),
        version=str(props.get("build_info") or "") or None,
        features=FEATURES["llama-server"],
    )


def _stem(model_id: str) -> str:
    name = model_id.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"\.gguf$", "", name, flags=re.IGNORECASE).lower()


def match_model(info: ServerInfo, wanted: str | None) -> ServedModel | None:
    """The served model ``wanted`` names (its id, file name or file stem).

    None wanted: the only model served. ModelNotFoundError, listing what the server
    serves, when there is no such model or the choice is ambiguous. A server that lists
    no models at all cannot be checked; None is returned and the server decides.
    """
    if not info.models:
        return None
    if wanted is None:
        if len(info.models) == 1:
            return info.models[0]
        raise ModelNotFoundError(
            f"{info.base_url} serves {len(info.models)} models; name one after '#': "
            + ", ".join(f"{info.base_url}#{m.id}" for m in info.models)
        )
    for model in info.models:
        if wanted in (model.id, model.id.rsplit("/", 1)[-1]) or _stem(model.id) == wanted.lower():
            return model
    served = ", ".join(repr(m.id) for m in info.models)
    raise ModelNotFoundError(
        f"{info.base_url} does not serve a model named {wanted!r}; it serves {served}. "
        f"Write the tier as {info.base_url}#<one of those> (for llama-server, the file "
        "name without .gguf, or the --alias it was started with)"
    )


def turn_openers(render: Any) -> list[str]:
    """The special markers that open a new chat turn in a template's rendering.

    ``render(messages)`` renders a one-message conversation; what follows the message
    text is the end of the user turn and the start of the assistant's. The first marker
    there ends a turn and must stay possible; the later ones open a turn, and a model
    that writes one is starting someone else's turn (the in-process tier ends its turn
    at such a control token; a remote tier bans them instead).
    """
    probe = "agentkit-probe-4f2a"
    text = str(render(probe))
    tail = text[text.rfind(probe) + len(probe) :]
    markers = re.findall(r"<\|[A-Za-z0-9_]+\|>|<[a-z_]+_(?:start|end)[a-z_]*>", tail)
    return list(dict.fromkeys(markers[1:]))
