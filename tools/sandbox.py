"""Where ``run_python`` runs a program: in bubblewrap, in Linux namespaces, or (only when
the agent's author asks for it) under resource limits alone.

- ``bwrap`` (bubblewrap; Debian and Ubuntu package ``bubblewrap``): new PID, network,
  IPC and UTS namespaces; a fresh root that holds the system folders and this Python
  read-only, a private /tmp and the run's work folder, the one writable place; a /proc
  that lists the sandbox's own processes only. An agent running as root has the program
  drop to ``nobody`` first, so that the process limit holds (root ignores RLIMIT_NPROC)
  and root's files stay out of reach.
- ``namespaces`` (util-linux ``unshare``, for an agent that does not run as root): new
  user, PID, mount, network, IPC and UTS namespaces with a fresh /proc. The files are
  the agent user's, as outside.
- ``none``: limits only. The program sees what the agent's user sees, and a process it
  moves into a session of its own (setsid) outlives the time limit.

In the first two the program's first process is the init of a new PID namespace: when
it exits, or is killed at the time limit, the kernel ends every process left in the
namespace, those that called setsid() included, before the wrapper returns. And since
the agent's processes are not in that namespace, ``/proc/<ppid>/environ`` and the like
do not exist for the program.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["NOBODY", "Sandbox", "SandboxKind", "choose", "sandbox_problem"]

SandboxKind = Literal["bwrap", "namespaces", "none"]
NOBODY = 65534
"""The uid and gid of ``nobody`` on Linux, which a program started by root runs as."""

# System folders a Python needs (the interpreter's own are added); absent ones are skipped.
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
_UNSHARE = (
    "--user", "--map-root-user", "--pid", "--fork", "--kill-child", "--mount-proc",
    "--net", "--ipc", "--uts",
)  # fmt: skip
_DESCRIPTIONS: dict[SandboxKind, str] = {
    "bwrap": (
        "It runs in a sandbox (bubblewrap): no network, no access to the agent's files or "
        "environment, a private /tmp; only what it prints comes back."
    ),
    "namespaces": (
        "It runs in Linux namespaces: no network and none of the agent's processes or "
        "environment; only what it prints comes back."
    ),
    "none": "It runs without a sandbox, under time, memory and output limits only.",
}


@dataclass(frozen=True)
class Sandbox:
    """How the program of one run_python call is started and ended."""

    kind: SandboxKind
    drop_to: int | None = None
    """The uid (and gid) the program switches to before it starts (root under bwrap)."""

    @property
    def description(self) -> str:
        """What the model is told about where its code runs."""
        return _DESCRIPTIONS[self.kind]

    def wrap(self, work: Path, command: list[str]) -> list[str]:
        """``command``, run from ``work`` inside this sandbox."""
        if self.kind == "bwrap":
            return [*_bwrap_args(work, as_root=self.drop_to is not None), "--", *command]
        if self.kind == "namespaces":
            return [_which("unshare"), *_UNSHARE, "--", *command]
        return command

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """End every process the run started (call it at the limit, and after a normal end).

        In a PID namespace, killing its init (the wrapper's child) makes the kernel end
        the rest; the wrapper then exits once they are gone.
        """
        inside: list[int] = []
        if self.kind != "none":
            inside = _descendants(process.pid)
            for child in _children(process.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(process.pid, signal.SIGKILL)
        if self.kind == "none":
            process.wait()  # the leader first: as a zombie it would keep the group alive
            _wait_for_group(process.pid)
        else:
            # The kernel ends the rest of the namespace once its init is killed, but not
            # at once: wait until every process seen inside is gone (or a zombie).
            _wait_until_gone(inside)


def choose(requested: str) -> Sandbox:
    """The sandbox for ``requested`` ("auto", "bwrap", "namespaces" or "none"), checked
    to work on this machine; ValueError saying why not and what to do."""
    if requested == "none":
        return Sandbox("none")
    if requested not in ("auto", "bwrap", "namespaces"):
        raise ValueError(
            f"unknown sandbox {requested!r}; use 'auto', 'bwrap', 'namespaces' or 'none'"
        )
    kinds: tuple[SandboxKind, ...] = (
        ("bwrap", "namespaces") if requested == "auto" else (requested,)  # type: ignore[assignment]
    )
    reasons = []
    for kind in kinds:
        problem = sandbox_problem(kind)
        if problem is None:
            return Sandbox(kind, drop_to=NOBODY if kind == "bwrap" and _is_root() else None)
        reasons.append(f"{kind}: {problem}")
    raise ValueError(
        "run_python found no sandbox to run code in ("
        + "; ".join(reasons)
        + "). Install bubblewrap (Debian/Ubuntu: apt install bubblewrap), or, to run "
        "model-written code without isolation, pass PythonExecutor(sandbox='none')"
    )


@functools.cache
def sandbox_problem(kind: SandboxKind) -> str | None:
    """Why ``kind`` cannot be used here, or None when a trial run in it succeeded."""
    if not sys.platform.startswith("linux"):
        return "it needs Linux"
    if kind == "namespaces" and _is_root():
        # Root ignores RLIMIT_NPROC and keeps root's access to files: only bwrap, where
        # the program drops to nobody, limits it.
        return "the agent runs as root, and root ignores the process limit"
    program = "bwrap" if kind == "bwrap" else "unshare"
    if shutil.which(program) is None:
        return f"{program} is not installed"
    sandbox = Sandbox(kind, drop_to=NOBODY if kind == "bwrap" and _is_root() else None)
    trial = "pass"
    if sandbox.drop_to is not None:
        trial = (
            f"import os; os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY}); "
            f"os.execv({sys.executable!r}, [{sys.executable!r}, '-I', '-c', 'pass'])"
        )
    with tempfile.TemporaryDirectory(prefix="agentkit-sandbox-probe-") as tmp:
        work = Path(tmp)
        if sandbox.drop_to is not None:
            os.chown(work, NOBODY, NOBODY)
        command = sandbox.wrap(work, [sys.executable, "-I", "-c", trial])
        try:
            done = subprocess.run(
                command, cwd=work, capture_output=True, timeout=30, check=False,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"a trial run failed ({exc})"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"a trial run failed ({said[-1] if said else f'exit code {done.returncode}'})"
    return None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _which(program: str) -> str:
    found = shutil.which(program)
    if found is None:  # checked by sandbox_problem; only a removal since then gets here
        raise FileNotFoundError(f"{program} is not installed")
    return found


def _bwrap_args(work: Path, *, as_root: bool) -> list[str]:
    # As root, no user namespace: the program needs CAP_SETUID in the real one to become
    # nobody (a namespace that maps only root could not switch to it).
    namespaces = (
        ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        if as_root
        else ["--unshare-all"]
    )
    args = [_which("bwrap"), *namespaces, "--die-with-parent", "--new-session", "--clearenv"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for folder in _SYSTEM:
        args += ["--ro-bind-try", folder, folder]
    for folder in _python_folders():
        args += [*_parents(folder), "--ro-bind", folder, folder]
    args += [*_parents(str(work)), "--bind", str(work), str(work), "--chdir", str(work)]
    if as_root:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return args


def _python_folders() -> list[str]:
    """This interpreter's folders (a virtual environment and the Python it is made from)
    that the system folders do not already cover."""
    found: list[str] = []
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates |= {os.path.realpath(p) for p in candidates}
    candidates.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    for folder in sorted(candidates, key=len):
        covered = any(folder == c or folder.startswith(c + os.sep) for c in (*_SYSTEM, *found))
        if not covered and os.path.isdir(folder):
            found.append(folder)
    return found


def _parents(path: str) -> list[str]:
    """bwrap options that make the folders above ``path`` traversable (0755) by anyone:
    bwrap would create them 0700, which keeps ``nobody`` out."""
    args: list[str] = []
    parts = Path(path).parts[1:-1]
    for i in range(len(parts)):
        folder = "/" + "/".join(parts[: i + 1])
        if folder not in _SYSTEM and folder != "/tmp":
            args += ["--perms", "0755", "--dir", folder]
    return args


def _wait_for_group(pgid: int, limit: float = 2.0) -> None:
    """Until no process of the group is left (SIGKILL is delivered, not instant)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, as the host sees them now."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 4096:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_until_gone(pids: list[int], limit: float = 2.0) -> None:
    deadline = time.monotonic() + limit
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the init of the sandbox's namespace)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]
    except (OSError, ValueError):
        pass
    found = []
    for entry in Path("/proc").iterdir():  # kernels built without the children file
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found
