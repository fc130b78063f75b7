"""A run SIGKILLed mid-step resumes to the same result without re-running tool calls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from agentkit.store import RunStore

SCRIPT = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    from agentkit import Agent, tool
    from agentkit.testing import ScriptedModel, call, calls, reply

    LEDGER = Path(os.environ["LEDGER"])

    @tool
    def record(n: int) -> str:
        """Append n to the ledger (a side effect that must happen once)."""
        with LEDGER.open("a") as f:
            f.write(f"{n}\\n")
        return f"recorded {n}"

    @tool(timeout=120, idempotent=True)
    def wait_for_signal(seconds: int) -> str:
        """Block, standing in for a long tool; returns at once when resuming."""
        if os.environ.get("PHASE") == "first":
            time.sleep(seconds)
        return "waited"

    FULL = [call("record", n=1),
            calls(("record", {"n": 2}), ("wait_for_signal", {"seconds": 60})),
            reply("recorded 1 and 2")]

    def build(turns):
        return Agent(ScriptedModel(turns), tools=[record, wait_for_signal],
                     store=os.environ["DB"], name="ledger", app=__file__ + ":resumed")

    def resumed():
        # the model steps that completed before the kill are not asked again
        return build(FULL[2:])

    if __name__ == "__main__":
        result = build(FULL).run("record twice", run_id=sys.argv[1])
        print(result.answer)
''')


def _env(tmp_path: Path, phase: str) -> dict[str, str]:
    return {
        **os.environ,
        "DB": str(tmp_path / "runs.db"),
        "LEDGER": str(tmp_path / "ledger"),
        "PHASE": phase,
    }


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    script = tmp_path / "ledger_agent.py"
    script.write_text(SCRIPT)
    child = subprocess.Popen([sys.executable, str(script), "victim"], env=_env(tmp_path, "first"))
    ledger = tmp_path / "ledger"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ledger.exists() and ledger.read_text().split() == ["1", "2"]:
            break
        assert child.poll() is None, "the agent ended before it could be killed"
        time.sleep(0.02)
    time.sleep(0.2)  # let record(2)'s durable write land; wait_for_signal is still blocking
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    store = RunStore(tmp_path / "runs.db")
    assert store.get_run("victim").status == "interrupted"  # killed: its executor is gone
    store.close()

    agentkit_cli = [sys.executable, "-m", "agentkit.cli"]
    done = subprocess.run(
        [*agentkit_cli, "runs", "resume", "victim", "--db", str(tmp_path / "runs.db")],
        env=_env(tmp_path, "resume"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "recorded 1 and 2" in done.stdout
    assert ledger.read_text().split() == ["1", "2"]  # nothing ran twice

    store = RunStore(tmp_path / "runs.db")
    run = store.get_run("victim")
    assert run.status == "succeeded" and run.answer == "recorded 1 and 2"
    replayed = [
        e
        for _, e in store.events("victim")
        if e.type == "tool_call" and getattr(e, "replayed", False)
    ]
    assert [e.name for e in replayed] == ["record"]

    # the same agent uninterrupted gives the same answer and the same tool results
    fresh = subprocess.run(
        [sys.executable, str(script), "fresh"],
        env={**_env(tmp_path, "resume"), "LEDGER": str(tmp_path / "ledger2")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fresh.stdout.strip() == "recorded 1 and 2"
    results = [[c.get("result") for c in s.tool_calls] for s in store.steps("victim")]
    fresh_results = [[c.get("result") for c in s.tool_calls] for s in store.steps("fresh")]
    assert results == fresh_results
