"""``run_python``: run model-written Python in a sandboxed child, off unless the author opts in.

    PythonExecutor(enabled=True, timeout=5.0, memory_mb=256).tools()

Each call writes the code to a fresh temporary folder and runs it with this interpreter
in isolated mode (``-I``: no user site, no PYTHON* variables), from that folder, in a
sandbox (``agentkit.tools.sandbox``): bubblewrap where it is installed, else Linux namespaces
(for an agent that does not run as root), else nothing unless the author explicitly
passes ``sandbox="none"``. In both sandboxes the code has no network, cannot see the
agent's processes (so not their environment either, not even through
``/proc/<ppid>/environ``), and everything it starts, ``setsid()`` daemons included, ends
with it or at the time limit. bubblewrap also hides the agent's files.

The environment holds nothing of the agent's: only a few fixed values set here (PATH,
HOME and TMPDIR pointing at the run's folder, one thread for numeric libraries). Limits:
address space (RLIMIT_AS), CPU seconds (RLIMIT_CPU), size of any file written
(RLIMIT_FSIZE, which also caps the captured output), number of processes (RLIMIT_NPROC;
under bubblewrap an agent running as root has the code run as ``nobody``, since root
ignores that limit) and a wall-clock timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from agentkit import ConfigError, Tool, ToolError
from agentkit.runtime import trim

from .sandbox import Sandbox, choose

__all__ = ["PythonExecutor"]

MAX_CODE_CHARS = 50_000
_MAX_FILE_BYTES = 8_000_000  # RLIMIT_FSIZE: any one file, stdout and stderr included

# Runs first in the child, inside the sandbox: becomes nobody where asked, sets the
# limits, then forks. The child replaces itself with the real run, so the user's code
# starts in a clean interpreter and its tracebacks show only its lines; this process
# stays as its parent (in a sandbox: the init of its PID namespace), reaps what the code
# leaves behind, and reports the code's exact wait status through a pipe the code has
# no copy of, so an exit code of 137 is never taken for a SIGKILL.
_BOOTSTRAP = """\
import json, os, resource, sys

cfg = json.loads(sys.argv[1])
if cfg["drop_to"] is not None:
    os.setgroups([])
    os.setgid(cfg["drop_to"])
    os.setuid(cfg["drop_to"])

def limit(which, soft, hard):
    current = resource.getrlimit(which)[1]
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(which, (soft, hard))

limit(resource.RLIMIT_CPU, cfg["cpu"], cfg["cpu"] + 1)
limit(resource.RLIMIT_FSIZE, cfg["fsize"], cfg["fsize"])
limit(resource.RLIMIT_CORE, 0, 0)
limit(resource.RLIMIT_NPROC, cfg["nproc"], cfg["nproc"])
try:
    limit(resource.RLIMIT_AS, cfg["memory"], cfg["memory"])
except (ValueError, OSError):  # macOS does not support RLIMIT_AS
    limit(resource.RLIMIT_DATA, cfg["memory"], cfg["memory"])
status_fd = cfg["status_fd"]
child = os.fork()
if child == 0:
    os.close(status_fd)
    os.execve(sys.executable, [sys.executable, "-I", "-X", "utf8", "main.py"], cfg["env"])
while True:
    pid, status = os.waitpid(-1, 0)
    if pid == child:
        break
os.write(status_fd, str(status).encode())
os._exit(0)
"""

_NEEDS_POSIX = "run_python needs Linux or macOS (it relies on POSIX rlimits)"

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

    ``sandbox``: "auto" (bubblewrap, else Linux namespaces; ConfigError if neither
    works here), "bwrap", "namespaces", or "none" to run without isolation.
    """

    def __init__(
        self,
        enabled: bool = False,
        *,
        timeout: float = 5.0,
        memory_mb: int = 256,
        max_output_chars: int = 4000,
        max_processes: int = 32,
        sandbox: str = "auto",
    ) -> None:
        if timeout <= 0 or memory_mb < 32 or max_output_chars < 200 or max_processes < 2:
            raise ConfigError(
                "PythonExecutor needs timeout > 0, memory_mb >= 32, max_output_chars >= 200 "
                "and max_processes >= 2"
            )
        self.enabled = enabled
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_output_chars = max_output_chars
        self.max_processes = max_processes
        self._sandbox: Sandbox | None = None
        if enabled:
            if os.name != "posix":
                raise ConfigError(_NEEDS_POSIX)
            try:
                self._sandbox = choose(sandbox)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc

    def __repr__(self) -> str:
        kind = self._sandbox.kind if self._sandbox else None
        return (
            f"PythonExecutor(enabled={self.enabled}, timeout={self.timeout}, "
            f"memory_mb={self.memory_mb}, sandbox={kind!r})"
        )

    @property
    def sandbox(self) -> str | None:
        """Where the code runs: "bwrap", "namespaces" or "none" (None while disabled)."""
        return self._sandbox.kind if self._sandbox else None

    def tools(self) -> list[Tool]:
        """``[run_python]``; ConfigError unless the executor was enabled."""
        if self._sandbox is None:
            raise ConfigError(_OPT_IN)
        summary = (self.run_python.__doc__ or "").split("\n\n")[0]
        return [
            Tool(
                self.run_python,
                description=f"{' '.join(summary.split())} {self._sandbox.description}",
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
        if self._sandbox is None:
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
            if self._sandbox.drop_to is not None:
                os.chown(work, self._sandbox.drop_to, self._sandbox.drop_to)
            returncode, timed_out = self._run(self._sandbox, work, folder)
            stdout = _read(folder / "stdout", work)
            stderr = _read(folder / "stderr", work)
        return self._report(returncode, timed_out, stdout, stderr)

    def _run(self, sandbox: Sandbox, work: Path, folder: Path) -> tuple[int, bool]:
        env = {
            "PATH": os.defpath,
            "HOME": str(work),
            "TMPDIR": str(work),
            # Numeric libraries start a thread per core, each reserving address space
            # that counts against RLIMIT_AS (and, as a task, against RLIMIT_NPROC).
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        status_read, status_write = os.pipe()
        settings = {
            "memory": self.memory_mb * 1024 * 1024,
            "cpu": max(1, round(self.timeout)),
            "fsize": _MAX_FILE_BYTES,
            "nproc": self.max_processes,
            "drop_to": sandbox.drop_to,
            "status_fd": status_write,
            "env": env,
        }
        command = sandbox.wrap(work, [sys.executable, "-I", "-c", _BOOTSTRAP, json.dumps(settings)])
        # Output goes to files, not pipes: the file size limit bounds them, and an
        # endless print loop cannot fill this process's memory.
        try:
            with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
                process = subprocess.Popen(
                    command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=err, start_new_session=True, pass_fds=(status_write,),
                )  # fmt: skip
                os.close(status_write)
                status_write = -1
                timed_out = False
                try:
                    process.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                # Also after a normal end: nothing the code started may outlive the call.
                sandbox.stop(process)
                wrapper_code = process.wait()
            status = "" if timed_out else _status(status_read)
        finally:
            os.close(status_read)
            if status_write >= 0:
                os.close(status_write)
        if status.strip().isdigit():
            return os.waitstatus_to_exitcode(int(status)), timed_out
        return wrapper_code, timed_out  # the sandbox itself failed; its stderr says why

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


def _status(fd: int) -> str:
    """What the bootstrap reported, without waiting: a process that kept the pipe open
    (it cannot, but if it could) must not hang the call."""
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 64).decode("ascii", "replace")
    except BlockingIOError:
        return ""


def _read(path: Path, work: Path) -> str:
    text = path.read_bytes().decode("utf-8", errors="replace").rstrip()
    # Tracebacks name the script by its absolute temporary path; the model only needs
    # "main.py", and the random folder name would vary between identical runs.
    return text.replace(f"{work}{os.sep}", "")
