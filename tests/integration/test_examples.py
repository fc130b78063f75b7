"""Every example script runs end to end on a real small model and records its run.

Each script runs in its own process, as a user would run it, on the smallest model with
a small step budget so the whole file stays within a few minutes on two CPU cores.
Whether the answers are right is for the benchmarks; here a run may also end without
success, as long as it ends with one of the documented exit codes, prints its summary
and leaves the run in the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _catalog_models import require_model

from agentkit.store import RunStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SMALL_MODEL = "smollm2-135m-instruct"
# 0 succeeded, 1 failed, 3 step budget spent, 4 stopped by the loop detectors.
DOCUMENTED_EXIT_CODES = {0, 1, 3, 4}
SUMMARY_HINT = "Open the monitor on this run:  agentkit monitor --db"

# script -> (extra arguments that keep it short, the run name it records)
CASES: dict[str, tuple[list[str], str]] = {
    "calculator.py": (["What is 12 times 7?"], "calculator"),
    "tidy_folder.py": ([], "tidy-folder"),
    "extract_records.py": ([], "extract-records"),
    "doc_qa.py": (["How many vacation days are there per year?"], "doc-qa"),
    "plan_act_verify.py": ([], "plan-act-verify"),
    "demo.py": ([], "demo-order-total"),
    "customer_emails.py": ([], "customer-emails"),
    "mcp_agent.py": (["What do 2 pens cost?"], "mcp-agent"),
}
# Scripts that other examples launch, not agents of their own.
HELPERS = {"mcp_server.py"}


@pytest.fixture(scope="module", autouse=True)
def _small_model_cached() -> None:
    require_model(SMALL_MODEL)  # a missing model fails every test here: `make models-all`


def test_every_example_is_covered() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts - HELPERS == set(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_and_records(script: str, tmp_path: Path) -> None:
    extra, run_name = CASES[script]
    db = tmp_path / "runs.db"
    # Scripts that make scratch folders make them here, not in the shared /tmp.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / script),
            *extra,
            "--model",
            SMALL_MODEL,
            "--max-steps",
            "4",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode in DOCUMENTED_EXIT_CODES, report
    assert "Traceback" not in proc.stderr, report
    assert "answer:" in proc.stdout and "steps:" in proc.stdout, report
    assert f"{SUMMARY_HINT} {db}" in proc.stdout, report

    store = RunStore(db, create=False)
    try:
        runs = store.list_runs()
        assert runs, report
        assert {r.name for r in runs} == {run_name}
        for run in runs:
            assert run.status != "running", run
            # The detectors may stop a run inside its first model step, before any step
            # is saved; its strikes are in the store all the same.
            strikes = [e for _, e in store.events(run.id) if e.type == "detector_strike"]
            assert run.steps > 0 or (run.status == "stopped" and strikes), (run, report)
    finally:
        store.close()
