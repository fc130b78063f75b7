"""run_python: off unless enabled; output captured; time, memory and output limits hold."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import pytest

from agentkit._errors import ConfigError, ToolError
from agentkit.tools import PythonExecutor

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="run_python needs POSIX")


@pytest.fixture
def py() -> PythonExecutor:
    return PythonExecutor(enabled=True, timeout=5.0, memory_mb=256)


def test_off_by_default() -> None:
    with pytest.raises(ConfigError, match=r"PythonExecutor\(enabled=True\)"):
        PythonExecutor().tools()
    with pytest.raises(ToolError, match=r"disabled.*PythonExecutor\(enabled=True\)"):
        PythonExecutor().run_python("print('should not run')")


def test_output_is_captured(py: PythonExecutor) -> None:
    result = py.run_python("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)")
    assert result == "exit code 0\nstdout:\nto stdout\nstderr:\nto stderr"


def test_errors_show_a_short_traceback(py: PythonExecutor) -> None:
    result = py.run_python("x = 1\nraise ValueError('boom')")
    assert result.startswith("exit code 1\nstderr:\nTraceback")
    assert 'File "main.py", line 2' in result  # no temporary folder names
    assert result.endswith("ValueError: boom")


def test_no_output_hints_at_print(py: PythonExecutor) -> None:
    assert py.run_python("6 * 7") == "exit code 0 (no output; use print() to show results)"


def test_infinite_loop_is_stopped_by_the_time_limit() -> None:
    py = PythonExecutor(enabled=True, timeout=1.0)
    start = time.monotonic()
    result = py.run_python("while True:\n    pass")
    assert time.monotonic() - start < 4
    assert result.startswith("stopped:")
    assert "time limit" in result


def test_sleeping_code_is_stopped_by_the_wall_clock() -> None:
    py = PythonExecutor(enabled=True, timeout=0.5)
    start = time.monotonic()
    result = py.run_python("import time\nprint('started', flush=True)\ntime.sleep(60)")
    assert time.monotonic() - start < 3
    assert result == "stopped: it ran past the 0.5 s time limit\nstdout:\nstarted"


def test_memory_limit_is_enforced() -> None:
    py = PythonExecutor(enabled=True, memory_mb=128)
    result = py.run_python("data = bytearray(1024 * 1024 * 1024)\nprint('allocated')")
    assert "MemoryError" in result
    assert "allocated" not in result
    # The same limit leaves room for ordinary work.
    assert py.run_python("print(len(bytearray(16 * 1024 * 1024)))").endswith("16777216")


def test_endless_output_is_bounded(py: PythonExecutor) -> None:
    result = py.run_python("while True:\n    print('x' * 1000)")
    assert len(result) < py.max_output_chars + 200
    assert "characters cut" in result


def test_runs_isolated_from_the_agent(
    py: PythonExecutor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGENTKIT_TEST_SECRET", "s3cret")
    monkeypatch.chdir(tmp_path)
    result = py.run_python(
        "import os\n"
        "print(os.environ.get('AGENTKIT_TEST_SECRET'))\n"
        "print(os.getcwd())\n"
        "open('left_behind.txt', 'w').write('x')\n"
        "print(sorted(os.listdir()))\n"
        "print(input())"
    )
    lines = result.splitlines()
    assert lines[2] == "None"
    assert lines[3] != str(tmp_path)  # a fresh folder, not the agent's working directory
    assert lines[4] == "['left_behind.txt', 'main.py']"
    assert "EOFError" in result  # stdin is empty, input() cannot block
    assert not (tmp_path / "left_behind.txt").exists()
    assert py.run_python("import os\nprint(os.path.exists('left_behind.txt'))").endswith("False")


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads /proc")
def test_processes_it_starts_are_killed_too() -> None:
    py = PythonExecutor(enabled=True, timeout=1.0)
    result = py.run_python(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)"
    )
    pid = int(result.splitlines()[2])
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie is dead, merely not yet reaped


def test_bad_input_and_configuration() -> None:
    py = PythonExecutor(enabled=True)
    with pytest.raises(ToolError, match="empty"):
        py.run_python("   ")
    with pytest.raises(ToolError, match="longer than"):
        py.run_python("#" * 60_000)
    with pytest.raises(ConfigError):
        PythonExecutor(enabled=True, timeout=0)
    with pytest.raises(ConfigError):
        PythonExecutor(enabled=True, memory_mb=1)


async def test_through_ainvoke_and_spec(py: PythonExecutor) -> None:
    (tool,) = py.tools()
    assert tool.name == "run_python"
    assert tool.timeout is not None and tool.timeout > py.timeout
    spec = tool.spec
    assert spec.parameters["required"] == ["code"]
    assert "print" in spec.description
    assert await tool.ainvoke({"code": "print(sum(range(10)))"}) == "exit code 0\nstdout:\n45"


def test_the_environment_it_gets_is_minimal(py: PythonExecutor) -> None:
    result = py.run_python("import os\nprint(sorted(os.environ))")
    names = ast.literal_eval(result.splitlines()[2])
    assert set(names) <= {
        "PATH", "HOME", "TMPDIR", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LC_CTYPE"
    }  # fmt: skip
