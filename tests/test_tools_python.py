"""run_python: off unless enabled; output captured; time, memory and output limits hold."""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentkit._errors import ConfigError, ToolError
from agentkit.tools import PythonExecutor
from agentkit.tools import sandbox as _sandbox

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


# Programs that leave processes behind: a plain child, one in a session of its own
# (setsid), and a daemon that forked twice around setsid() and ignores SIGHUP/SIGTERM.
LEFT_BEHIND = {
    "child": "subprocess.Popen([sys.executable, '-c', SLEEPER])",
    "setsid child": "subprocess.Popen([sys.executable, '-c', SLEEPER], start_new_session=True)",
    "double-forked daemon": (
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "        os.execv(sys.executable, [sys.executable, '-c', SLEEPER])\n"
        "    os._exit(0)\n"
        "os.wait()"
    ),
}


def _running_with(marker: str) -> list[int]:
    """Host processes (not zombies) whose command line carries ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _leaver(how: str, marker: str, then: str) -> str:
    return (
        "import os, signal, subprocess, sys, time\n"
        f"SLEEPER = 'import time; time.sleep(120)  # {marker}'\n"
        f"{LEFT_BEHIND[how]}\n"
        "time.sleep(0.5)\n"  # let the daemon get going before the program goes on
        "print('started', flush=True)\n"
        f"{then}"
    )


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", list(LEFT_BEHIND))
@pytest.mark.parametrize("then", ["time.sleep(60)", "pass"], ids=["at the limit", "at the end"])
def test_processes_it_starts_are_killed_too(how: str, then: str, kind: str) -> None:
    py = PythonExecutor(enabled=True, timeout=2.0, sandbox=kind)
    marker = f"agentkit-leftover-{uuid.uuid4().hex}"
    result = py.run_python(_leaver(how, marker, then))
    assert "started" in result
    # The call returns only once the sandbox's PID namespace is empty: no waiting here.
    assert _running_with(marker) == []


def test_without_a_sandbox_only_the_process_group_is_ended() -> None:
    # sandbox="none" is the documented escape: a plain child dies, a setsid one would not.
    py = PythonExecutor(enabled=True, timeout=2.0, sandbox="none")
    marker = f"agentkit-leftover-{uuid.uuid4().hex}"
    assert "started" in py.run_python(_leaver("child", marker, "time.sleep(60)"))
    assert _running_with(marker) == []
    assert "without a sandbox" in py.tools()[0].spec.description


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


# -- the sandboxes ------------------------------------------------------------------------

KINDS = ["bwrap", "namespaces"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each sandbox this machine has. As root, namespaces are refused (root ignores the
    process limit); its other guarantees are still tried here, as root in the namespace."""
    name: str = request.param
    if name == "namespaces" and os.geteuid() == 0:
        monkeypatch.setattr(_sandbox, "_is_root", lambda: False)
    _sandbox.sandbox_problem.cache_clear()
    problem = _sandbox.sandbox_problem(name)  # type: ignore[arg-type]
    if problem is not None:
        pytest.skip(f"no {name} sandbox here: {problem}")
    yield name
    _sandbox.sandbox_problem.cache_clear()


SCAN = """\
import json, os
found = []
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            if b'AGENTKIT_TEST_SECRET=s3cret' in open(f'/proc/{pid}/environ', 'rb').read():
                found.append(int(pid))
        except OSError:
            pass
print(json.dumps({'found': found, 'env': 'AGENTKIT_TEST_SECRET' in os.environ}))
"""

PARENT = """\
import json, subprocess, sys
from agentkit.tools import PythonExecutor, sandbox as _sandbox
if sys.argv[2] == "pretend-not-root":
    _sandbox._is_root = lambda: False
py = PythonExecutor(enabled=True, sandbox=sys.argv[1])
sandboxed = py.run_python(sys.argv[3]).splitlines()[2]
plain = subprocess.run([sys.executable, "-c", sys.argv[3]], capture_output=True, text=True)
print(json.dumps({"sandboxed": json.loads(sandboxed), "plain": json.loads(plain.stdout)}))
"""


def test_the_agents_environment_cannot_be_read(kind: str) -> None:
    # The secret is in the environment the agent process started with, which is what
    # /proc/<pid>/environ shows; a plain child of the same agent finds it there.
    pretend = "pretend-not-root" if kind == "namespaces" and os.geteuid() == 0 else "as-is"
    done = subprocess.run(
        [sys.executable, "-c", PARENT, kind, pretend, SCAN],
        env={**os.environ, "AGENTKIT_TEST_SECRET": "s3cret"},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    seen = json.loads(done.stdout)
    assert seen["plain"]["found"] and seen["plain"]["env"]  # the check can fail
    assert seen["sandboxed"] == {"found": [], "env": False}


def test_the_number_of_processes_is_limited(kind: str) -> None:
    if kind == "namespaces" and os.geteuid() == 0:
        pytest.skip("as root, namespaces cannot limit processes (the reason bwrap is needed)")
    py = PythonExecutor(enabled=True, sandbox=kind, max_processes=8, timeout=10)
    result = py.run_python(
        "import os, time\n"
        "started = 0\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        started += 1\n"
        "except BlockingIOError as exc:\n"
        "    print('refused:', exc.strerror)\n"
        "print('started', started)"
    )
    lines = result.splitlines()
    assert lines[2] == "refused: Resource temporarily unavailable"
    started = int(lines[3].split()[1])
    assert 0 < started < 8  # the bootstrap and the program count too


def test_there_is_no_network(kind: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        result = PythonExecutor(enabled=True, sandbox=kind).run_python(
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    print('connected')\n"
            "except OSError as exc:\n"
            "    print(type(exc).__name__)"
        )
    assert result.splitlines()[2] in ("ConnectionRefusedError", "OSError")


def test_bubblewrap_hides_the_agents_files(tmp_path: Path) -> None:
    if _sandbox.sandbox_problem("bwrap") is not None:
        pytest.skip("bubblewrap is not installed here")
    secret = tmp_path / "secret.txt"
    secret.write_text("agent's data")
    py = PythonExecutor(enabled=True, sandbox="bwrap")
    result = py.run_python(f"print(open({str(secret)!r}).read())")
    assert "FileNotFoundError" in result and "agent's data" not in result
    assert "bubblewrap" in py.tools()[0].spec.description
    home = py.run_python("import os\nprint(sorted(os.listdir('/')))")
    assert "'home'" not in home and "'root'" in home  # only what Python needs is there


def test_sandbox_choice_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown sandbox 'jail'"):
        PythonExecutor(enabled=True, sandbox="jail")
    problems = {"bwrap": "bwrap is not installed", "namespaces": "unshare is not installed"}
    monkeypatch.setattr(_sandbox, "sandbox_problem", lambda kind: problems[kind])
    with pytest.raises(ConfigError) as info:
        PythonExecutor(enabled=True)
    message = str(info.value)
    assert "bwrap: bwrap is not installed; namespaces: unshare is not installed" in message
    assert "apt install bubblewrap" in message and "sandbox='none'" in message
    assert PythonExecutor(enabled=True, sandbox="none").sandbox == "none"
    assert PythonExecutor().sandbox is None  # disabled: nothing is probed


def test_namespaces_are_refused_to_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sandbox, "_is_root", lambda: True)
    _sandbox.sandbox_problem.cache_clear()
    try:
        with pytest.raises(ConfigError, match="root ignores the process limit"):
            PythonExecutor(enabled=True, sandbox="namespaces")
    finally:
        _sandbox.sandbox_problem.cache_clear()


def test_an_exit_code_is_never_taken_for_a_signal(py: PythonExecutor) -> None:
    assert py.run_python("import sys\nsys.exit(137)") == "exit code 137 (no output)"
    result = py.run_python("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert result == "stopped: it crashed (segmentation fault) (no output)"
