"""An output guard: the answer must be a JSON document valid against a JSON schema.

Validation is jsonschema's (any draft the schema declares, 2020-12 otherwise). Small
models often wrap JSON in a Markdown fence or a sentence; the document is taken from a
fence, or from the first ``{``/``[`` to the matching last bracket, before it is parsed.
A failure sends the turn back by default, with the parser's or the validator's message
and the schema, which is what a small model needs to fix its answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .._errors import ConfigError
from ._base import Filter
from ._verdict import Action, Subject, Target, Verdict

__all__ = ["JSONSchemaGuard", "extract_json"]

_FENCE = "```"


class JSONSchemaGuard(Filter):
    """Checks that the answer is JSON matching ``schema`` (a JSON schema, or a pydantic
    model class whose schema is used). On failure the verdict is ``on_fail`` (retry by
    default). With ``normalise=True`` a valid document found inside other text replaces
    the answer."""

    name = "json_schema"
    default_targets: frozenset[Target] = frozenset({"answer"})

    def __init__(
        self,
        schema: Mapping[str, Any] | type[BaseModel],
        *,
        on_fail: Action = "retry",
        normalise: bool = False,
        **options: Any,
    ) -> None:
        from jsonschema import exceptions, validators

        if isinstance(schema, type) and issubclass(schema, BaseModel):
            schema = schema.model_json_schema()
        if not isinstance(schema, Mapping):
            raise ConfigError(
                f"JSONSchemaGuard: schema must be a dict or a pydantic model, got {schema!r}"
            )
        if on_fail in ("pass", "rewrite", "redact"):
            raise ConfigError(
                f"JSONSchemaGuard: on_fail={on_fail!r}; use retry, block, escalate or stop"
            )
        self.schema = dict(schema)
        cls = validators.validator_for(self.schema)
        try:
            cls.check_schema(self.schema)
        except exceptions.SchemaError as exc:
            raise ConfigError(f"JSONSchemaGuard: the schema is invalid: {exc.message}") from exc
        self._validator = cls(self.schema)
        self.on_fail: Action = on_fail
        self.normalise = normalise
        super().__init__(**options)

    async def check(self, subject: Subject) -> Verdict:
        # Fast and pure: no worker thread needed.
        return self.check_now(subject)

    def check_now(self, subject: Subject) -> Verdict:
        """``check``, synchronously."""
        document, found = extract_json(subject.text)
        if document is None:
            return self._fail(f"the reply is not JSON ({found})")
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(document))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the top level"
            return self._fail(f"at {where}: {error.message}")
        if self.normalise and found != subject.text.strip():
            return Verdict.rewrite(
                json.dumps(document, ensure_ascii=False),
                changes=("the JSON document taken out of the surrounding text",),
            )
        return Verdict.ok()

    def _fail(self, problem: str) -> Verdict:
        schema = json.dumps(self.schema, ensure_ascii=False)
        feedback = (
            f"Reply with only a JSON document that matches this JSON schema: {schema}. "
            f"Problem with your reply: {problem}."
        )
        if self.on_fail == "retry":
            return Verdict.retry(feedback, reason=f"invalid JSON answer: {problem}")
        return Verdict(self.on_fail, f"invalid JSON answer: {problem}", feedback=feedback)


def extract_json(text: str) -> tuple[Any | None, str]:
    """The JSON document in ``text`` and the text it was read from, or (None, why)."""
    candidates = [text.strip()]
    if _FENCE in text:
        inside = text.split(_FENCE)[1::2]
        candidates += [c.split("\n", 1)[1] if c.lstrip().startswith("json") else c for c in inside]
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        start = min(starts)
        end = max(text.rfind("}"), text.rfind("]"))
        if end > start:
            candidates.append(text[start : end + 1])
    if not starts:
        return None, "no JSON document found"
    problem = ""
    for candidate in candidates:
        try:
            return json.loads(candidate), candidate.strip()
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return None, problem
