"""``run_python``: run model-written Python in a child process, off unless the author opts in.

    PythonExecutor(enabled=True, timeout=5.0, memory_mb=256).tools()

Each call writes the code to a fresh temporary folder and runs it with this interpreter
in isolated mode (``-I``: no user site, no PYTHON* variables), from that folder, with an
environment that carries nothing of the agent's own (API keys stay out). Limits: address
space (RLIMIT_AS), CPU seconds (RLIMIT_CPU), size of any file written (RLIMIT_FSIZE, which
also caps the captured output), and a wall-clock timeout after which the whole process
group is killed.

This limits resources; it is NOT a security sandbox. The code runs as the agent's user:
it can read that user's files and reach the network. Enable it only where that is fine,
or run the whole agent inside a container.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from agentkit import ConfigError, Tool, ToolError
from agentkit.runtime import trim

__all__ = ["PythonExecutor"]

MAX_CODE_CHARS = 50_000
_MAX_FILE_BYTES = 8_000_000  # RLIMIT_FSIZE: any one file, stdout and stderr included

# Runs first in the child: sets the limits, then replaces itself with the real run, so
# the user's code starts in a clean interpreter and its tracebacks show only its lines.
_BOOTSTRAP = """\
import os, resource, sys

def limit(which, soft, hard):
    current = resource.getrlimit(which)[1]
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(which, (soft, hard))

memory, cpu, fsize = (int(v) for v in sys.argv[1:4])
limit(resource.RLIMIT_CPU, cpu, cpu + 1)
limit(resource.RLIMIT_FSIZE, fsize, fsize)
limit(resource.RLIMIT_CORE, 0, 0)
try:
    limit(resource.RLIMIT_AS, memory, memory)
except (ValueError, OSError):  # macOS does not support RLIMIT_AS
    limit(resource.RLIMIT_DATA, memory, memory)
os.execv(sys.executable, [sys.executable, "-I", "-X", "utf8", sys.argv[4]])
"""

# By name: Windows lacks most of these, and importing agentkit.tools must still work there.
_SIGNALS = {
    getattr(signal, name): text
    for name, text in (
        ("SIGXCPU", "the CPU time limit was reached"),
        ("SIGXFSZ", "it wrote more output than allowed"),
        ("SIGKILL", "it was killed (out of memory or CPU time)"),
        ("SIGSEGV", "it crashed (segmentation fault)"),
    )
    if hasattr(signal, name)
}


class PythonExecutor:
    """The ``run_python`` tool. Off by default: pass ``enabled=True`` to opt in.

    Not a sandbox: the code runs as your user, with your file access and network.
    """

    def __init__(
        self,
        enabled: bool = False,
        *,
        timeout: float = 5.0,
        memory_mb: int = 256,
        max_output_chars: int = 4000,
    ) -> None:
        if timeout <= 0 or memory_mb < 32 or max_output_chars < 200:
            raise ConfigError(
                "PythonExecutor needs timeout > 0, memory_mb >= 32 and max_output_chars >= 200"
            )
        if enabled and os.name != "posix":
            raise ConfigError("run_python needs Linux or macOS (it relies on POSIX rlimits)")
        self.enabled = enabled
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_output_chars = max_output_chars

    def __repr__(self) -> str:
        return (
            f"PythonExecutor(enabled={self.enabled}, timeout={self.timeout}, "
            f"memory_mb={self.memory_mb})"
        )

    def tools(self) -> list[Tool]:
        """``[run_python]``; ConfigError unless the executor was enabled."""
        if not self.enabled:
            raise ConfigError(_OPT_IN)
        return [
            Tool(
                self.run_python,
                # Room to start the interpreter and collect output after the kill.
                timeout=self.timeout + 10,
                max_output_chars=self.max_output_chars + 500,
            )
        ]

    def run_python(self, code: str) -> str:
        """Run a Python program and see what it prints. Use it for calculations, data
        processing or checking code. Only printed output is shown, so print() the
        results. Each call starts fresh: nothing is kept between calls.

        Args:
            code: a complete Python program, for example "print(sum(range(10)))"
        """
        if not self.enabled:
            raise ToolError(_OPT_IN)
        if not code.strip():
            raise ToolError("code is empty; pass a Python program that prints its result")
        if len(code) > MAX_CODE_CHARS:
            raise ToolError(f"the program is longer than {MAX_CODE_CHARS} characters")
        with tempfile.TemporaryDirectory(prefix="agentkit-python-") as tmp:
            folder = Path(tmp)
            work = folder / "work"
            work.mkdir()
            (work / "main.py").write_text(code, encoding="utf-8")
            returncode, timed_out = self._run(work, folder)
            stdout = _read(folder / "stdout", work)
            stderr = _read(folder / "stderr", work)
        return self._report(returncode, timed_out, stdout, stderr)

    def _run(self, work: Path, folder: Path) -> tuple[int, bool]:
        command = [
            sys.executable, "-I", "-c", _BOOTSTRAP,
            str(self.memory_mb * 1024 * 1024), str(max(1, round(self.timeout))),
            str(_MAX_FILE_BYTES), "main.py",
        ]  # fmt: skip
        env = {
            "PATH": os.defpath,
            "HOME": str(work),
            "TMPDIR": str(work),
            # Numeric libraries start a thread per core, each reserving address space
            # that counts against RLIMIT_AS.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        # Output goes to files, not pipes: the file size limit bounds them, and an
        # endless print loop cannot fill this process's memory.
        with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
            process = subprocess.Popen(
                command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, start_new_session=True,
            )  # fmt: skip
            timed_out = False
            try:
                process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            # Its own session and process group: this also ends anything it started.
            _kill_group(process.pid)
            return process.wait(), timed_out

    def _report(self, returncode: int, timed_out: bool, stdout: str, stderr: str) -> str:
        if timed_out:
            status = f"stopped: it ran past the {self.timeout:g} s time limit"
        elif returncode < 0:
            reason = _SIGNALS.get(-returncode, f"it was ended by signal {-returncode}")
            status = f"stopped: {reason}"
        else:
            status = f"exit code {returncode}"
        if not stdout and not stderr:
            hint = "" if timed_out or returncode else "; use print() to show results"
            return f"{status} (no output{hint})"
        err_budget = self.max_output_chars // 3 if stdout else self.max_output_chars
        parts = [status]
        shown_err = trim(stderr, err_budget) if stderr else ""
        if stdout:
            parts.append("stdout:\n" + trim(stdout, self.max_output_chars - len(shown_err)))
        if stderr:
            parts.append("stderr:\n" + shown_err)
        return "\n".join(parts)


_OPT_IN = (
    "run_python is disabled: running model-written code is off unless the agent's author "
    "opts in with PythonExecutor(enabled=True)"
)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, signal.SIGKILL)


def _read(path: Path, work: Path) -> str:
    text = path.read_bytes().decode("utf-8", errors="replace").rstrip()
    # Tracebacks name the script by its absolute temporary path; the model only needs
    # "main.py", and the random folder name would vary between identical runs.
    return text.replace(f"{work}{os.sep}", "")
