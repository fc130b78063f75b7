"""Filters: checks around a raw model on what goes in (the task, tool results) and what
comes out (answers, tool calls). Opt-in, ordered and async; every verdict other than a
plain pass is a ``FilterVerdict`` event of the run. docs/filters.md has the details.

    from agentkit import Agent
    from agentkit.filters import InjectionScreen, PIIFilter

    agent = Agent(model, tools=[...], filters=[PIIFilter(), InjectionScreen()])

Built in: ``PIIFilter`` (presidio-analyzer's recognizers), ``SecretsFilter``
(detect-secrets), ``InjectionScreen`` (a documented heuristic), ``JSONSchemaGuard``
(jsonschema), ``RegexPolicy`` (the ``regex`` module, with time limits) and
``ModelJudge`` (a local GGUF model answering yes or no). Write your own by subclassing
``Filter`` (or ``TextFilter``), or pass a plain function of the ``Subject``.
"""

from ._base import Filter, Finding, FunctionFilter, TextFilter, as_filter
from ._injection import InjectionScreen
from ._judge import ChoiceScorer, JudgeStats, ModelJudge
from ._pii import PII_ENTITIES, PIIFilter
from ._policy import RegexPolicy
from ._schema import JSONSchemaGuard
from ._secrets import SecretsFilter
from ._verdict import (
    INPUT_TARGETS,
    OUTPUT_TARGETS,
    TARGETS,
    Action,
    Stage,
    Subject,
    Target,
    Verdict,
)

__all__ = [
    "INPUT_TARGETS",
    "OUTPUT_TARGETS",
    "PII_ENTITIES",
    "TARGETS",
    "Action",
    "ChoiceScorer",
    "Filter",
    "Finding",
    "FunctionFilter",
    "InjectionScreen",
    "JSONSchemaGuard",
    "JudgeStats",
    "ModelJudge",
    "PIIFilter",
    "RegexPolicy",
    "SecretsFilter",
    "Stage",
    "Subject",
    "Target",
    "TextFilter",
    "Verdict",
    "as_filter",
]
