"""Every error agentkit raises on purpose derives from AgentkitError.

    AgentkitError
    ├── ConfigError            a definition is wrong; raised at build time, before anything runs
    ├── ModelError             a model cannot be found, fetched, loaded or run
    │   ├── ModelNotFoundError     unknown name, or a path that does not exist
    │   ├── ModelFileError         not a GGUF, truncated or corrupt
    │   ├── ChecksumError          downloaded bytes do not match the published digest
    │   ├── DownloadError          no source could deliver the model
    │   ├── ContextOverflowError   a prompt does not fit the model's context window
    │   └── RemoteModelError       an OpenAI-compatible server refused or failed a request
    │       ├── ServerUnreachableError   connection refused, unknown host, no answer in time
    │       ├── MalformedResponseError   the server's reply is not the JSON it should be
    │       └── StreamCutError           a streamed reply ended before it was complete
    ├── ToolError              a tool refused its input (workspace escape, disabled tool, ...)
    ├── RunError               a run could not go on; carries run_id and step
    │   ├── RunStopped             a detector or a person stopped it, with a diagnosis
    │   ├── ResumeError            a stored run cannot be resumed
    │   │   └── RunLeasedError         another live executor holds the run
    │   └── LeaseLostError         another executor took the run over mid-step
    ├── StoreError             the run store cannot be opened or written
    │   └── SchemaVersionError     the database was written by a newer agentkit
    └── ScriptError            agentkit.testing: a scripted model met an unexpected call

Backend exceptions are translated once, where they enter agentkit, with
``raise NewError(...) from exc`` so the original stays on ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Sequence


class AgentkitError(Exception):
    """Base of every error agentkit raises deliberately."""


class ConfigError(AgentkitError):
    """A definition (graph, agent, tool, setting) is invalid.

    ``problems`` lists every problem found, so a user fixes them all in one pass.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{len(self.problems)} problems found:\n{lines}"
        super().__init__(message)


class ModelError(AgentkitError):
    """A model cannot be found, fetched, loaded or run."""


class ModelNotFoundError(ModelError):
    """The model name is not in the catalog, or the path does not exist."""


class ModelFileError(ModelError):
    """The file is not a usable GGUF (wrong magic, truncated, corrupt)."""


class ChecksumError(ModelError):
    """The bytes of a model do not match the size or digest its source publishes."""


class DownloadError(ModelError):
    """No source could deliver the model."""


class ContextOverflowError(ModelError):
    """A prompt plus its generation budget does not fit the context window."""

    def __init__(self, message: str, *, prompt_tokens: int, context_size: int) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.context_size = context_size


class RemoteModelError(ModelError):
    """An OpenAI-compatible server refused or failed a request.

    ``url`` is the endpoint, ``status`` the HTTP status (None when there was no response)
    and ``server_message`` what the server said, when it said something.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.server_message = server_message


class ServerUnreachableError(RemoteModelError):
    """The server could not be reached (refused, unknown host) or did not answer in time."""


class MalformedResponseError(RemoteModelError):
    """The server answered with something that is not the JSON the protocol promises."""


class StreamCutError(RemoteModelError):
    """A streamed reply ended before the server said it was complete.

    ``partial_text`` holds what had arrived; the request is never repeated once output
    has been produced, because a tool call in it may already have been acted on.
    """

    def __init__(self, message: str, *, url: str | None = None, partial_text: str = "") -> None:
        super().__init__(message, url=url)
        self.partial_text = partial_text


class ToolError(AgentkitError):
    """A tool refused its input. The message is shown to the model as an observation."""


class RunError(AgentkitError):
    """A run could not go on."""

    def __init__(self, message: str, *, run_id: str | None = None, step: int | None = None) -> None:
        where = []
        if run_id is not None:
            where.append(f"run {run_id}")
        if step is not None:
            where.append(f"step {step}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.run_id = run_id
        self.step = step


class RunStopped(RunError):
    """The run was stopped on purpose (detector, abort); ``diagnosis`` says why."""

    def __init__(
        self, diagnosis: str, *, run_id: str | None = None, step: int | None = None
    ) -> None:
        super().__init__(diagnosis, run_id=run_id, step=step)
        self.diagnosis = diagnosis


class ResumeError(RunError):
    """A stored run cannot be resumed (unknown id, finished, different graph)."""


class RunLeasedError(ResumeError):
    """Another executor is running this run (its lease is live): one executor per run."""


class LeaseLostError(RunError):
    """Another executor took this run over (this one's lease went stale); nothing of the
    step in progress was written."""


class StoreError(AgentkitError):
    """The run store cannot be opened or written."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this agentkit understands."""


class ScriptError(AgentkitError):
    """A scripted test model was called in a way its script did not expect."""
