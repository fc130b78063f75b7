"""Run limits and hostile tools: a wall-clock limit, aborts during a step, hung tools, tools
that try to end the process, results that cannot be shown."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentkit import Agent, RunStore, tool
from agentkit.models import Message, ModelResponse, Sampling, ToolSpec, Usage
from agentkit.testing import ScriptedModel, call, reply

ROOT = Path(__file__).resolve().parents[1]


class SlowTalker:
    """A model that says one word every 0.1 s and stops when told to."""

    name = "slow"
    context_size = 4096
    parameters = 1_000_000

    def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        sampling: Sampling | None = None,
        on_token: Any = None,
        cancel: threading.Event | None = None,
        tool_choice: Any = "auto",
    ) -> ModelResponse:
        words = []
        for i in range(200):
            if cancel is not None and cancel.is_set():
                return ModelResponse(content=" ".join(words), finish_reason="cancelled")
            words.append(f"word{i}")
            if on_token is not None:
                on_token(f" word{i}")
            time.sleep(0.1)
        return ModelResponse(content=" ".join(words), usage=Usage(completion_tokens=200))

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        return 10


def test_a_run_stops_mid_generation_at_its_wall_clock_limit(store: RunStore) -> None:
    started = time.perf_counter()
    result = Agent(SlowTalker(), store=store, max_seconds=0.6).run("talk")
    assert result.status == "timed_out" and result.exit_code == 6
    assert time.perf_counter() - started < 5  # long before the 20 s the model would take
    assert result.error is not None and "max_seconds" in result.error
    assert result.answer is not None and result.answer.startswith("(partial) word0")
    assert store.get_run(result.run_id).status == "timed_out"


@tool(timeout=30)
def slow_job(seconds: float) -> str:
    """Wait for a while.

    Args:
        seconds: how long
    """
    time.sleep(seconds)
    return "done"


def test_abort_takes_effect_while_a_tool_runs(store: RunStore) -> None:
    model = ScriptedModel([call("slow_job", seconds=20)])
    agent = Agent(model, tools=[slow_job], store=store)
    run_id = "abort-me"

    def send() -> None:
        time.sleep(0.5)
        store.send_control(run_id, "abort")

    threading.Thread(target=send, daemon=True).start()
    started = time.perf_counter()
    result = agent.run("wait", run_id=run_id)
    assert result.status == "aborted" and time.perf_counter() - started < 5
    assert store.get_run(run_id).status == "aborted"


@tool(timeout=0.2)
def hang() -> str:
    """Never returns."""
    threading.Event().wait()
    return "unreachable"


@tool
def instant() -> str:
    """Returns at once."""
    return "here"


def test_hung_tools_do_not_starve_the_others(store: RunStore) -> None:
    script = [call("hang")] * 12 + [call("instant"), reply("ok")]
    model = ScriptedModel(script)
    agent = Agent(model, tools=[hang, instant], store=store, max_steps=40, answer_now=False)
    from agentkit.detection import DetectorConfig

    agent.detectors = DetectorConfig(
        disabled=frozenset({"same_call", "same_error", "no_progress", "cycle", "same_result"})
    )
    result = agent.run("go")
    results = [
        c["result"] for s in store.steps(result.run_id) for c in s.tool_calls if "result" in c
    ]
    assert results[-1] == "here"  # the instant tool still ran at once, after 12 hung calls
    assert all("did not finish within 0.2 s" in r for r in results[:-1])


def test_a_hung_tool_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import threading
        from agentkit import Agent, tool
        from agentkit.testing import ScriptedModel, call, reply

        @tool(timeout=0.2)
        def hang() -> str:
            \"\"\"Never returns.\"\"\"
            threading.Event().wait()
            return "x"

        model = ScriptedModel([call("hang"), reply("gave up")])
        result = Agent(model, tools=[hang], store={str(tmp_path / "runs.db")!r}).run("go")
        print(result.status, result.answer)
        """
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "succeeded gave up"
    assert time.perf_counter() - started < 30


@tool
def quitter() -> str:
    """Tries to end the program."""
    raise SystemExit(3)


@tool
def interrupter() -> str:
    """Raises KeyboardInterrupt from tool code."""
    raise KeyboardInterrupt


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")

    __repr__ = __str__


@tool
def weird() -> Unprintable:
    """Returns something that cannot be shown."""
    return Unprintable()


def test_tools_that_exit_interrupt_or_return_junk_become_errors(store: RunStore) -> None:
    model = ScriptedModel([call("quitter"), call("interrupter"), call("weird"), reply("done")])
    with model:
        result = Agent(model, tools=[quitter, interrupter, weird], store=store).run("go")
    assert result.ok
    results = [
        c["result"] for s in store.steps(result.run_id) for c in s.tool_calls if "result" in c
    ]
    assert "tried to end the process (SystemExit)" in results[0]
    assert "tried to end the process (KeyboardInterrupt)" in results[1]
    assert "cannot be shown" in results[2]
