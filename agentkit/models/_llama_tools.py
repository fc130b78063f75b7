"""llama.cpp's own programs (llama-server, llama-batched-bench) and a llama-server process.

``make llama-tools`` builds them from the llama.cpp that the llama-cpp-python sdist
vendors (``scripts/build_llama_tools.sh``) into the agentkit cache, and the Makefile
points ``$AGENTKIT_LLAMA_BIN`` at them. ``LlamaServer`` serves a GGUF on this machine:
the real server of the remote-tier tests and the peer of the benchmarks.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from .._errors import ModelError
from ._catalog import resolve_model

__all__ = ["LlamaServer", "llama_tool"]


def _cache_root() -> Path:
    home = os.environ.get("AGENTKIT_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "agentkit"


def llama_tool(name: str = "llama-server") -> Path:
    """The path of a llama.cpp program: ``$AGENTKIT_LLAMA_BIN``, then the newest build
    in the agentkit cache, then ``PATH``. ModelError, saying how to build it, if none."""
    explicit = os.environ.get("AGENTKIT_LLAMA_BIN")
    candidates = [Path(explicit).expanduser() / name] if explicit else []
    builds = sorted(
        (_cache_root() / "llama.cpp").glob(f"*/bin/{name}"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    candidates += builds
    on_path = shutil.which(name)
    candidates += [Path(on_path)] if on_path else []
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    where = f"$AGENTKIT_LLAMA_BIN ({explicit}), " if explicit else ""
    raise ModelError(
        f"{name} was not found in {where}{_cache_root() / 'llama.cpp'} or on PATH. Build it "
        "with `make llama-tools` (about 8 minutes on 2 cores, cached afterwards)"
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """A llama-server process serving one GGUF model on this machine.

    Use it as a context manager, or ``start()``/``stop()``. The model is a catalog name or
    a .gguf path; the server's model id is ``alias`` (default: the catalog name or file
    stem), so ``spec`` (``http://127.0.0.1:PORT/v1#alias``) works as a ladder tier.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        slots: int = 1,
        context: int = 4096,
        threads: int | None = None,
        alias: str | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 180.0,
    ) -> None:
        """``context`` is per slot; ``slots`` requests are decoded together (``-np``)."""
        self.model_path = resolve_model(model)
        is_name = isinstance(model, str) and not os.fspath(model).endswith(".gguf")
        self.alias = alias or (str(model) if is_name else self.model_path.stem)
        self.host = host
        self.port = port
        self.slots = slots
        self.context = context
        self.threads = threads or os.cpu_count() or 1
        self.extra_args = tuple(extra_args)
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        fd, log = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(fd)
        self._log_path = Path(log)

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def spec(self) -> str:
        """The tier spec of the served model: ``http://host:port/v1#alias``."""
        return f"{self.base_url}#{self.alias}"

    @property
    def log_path(self) -> Path:
        """Where the server's own output goes."""
        return self._log_path

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def command(self) -> list[str]:
        """The command line ``start`` runs."""
        return [
            str(llama_tool("llama-server")),
            "-m", str(self.model_path),
            "--host", self.host,
            "--port", str(self.port),
            "--alias", self.alias,
            "-np", str(self.slots),
            "-c", str(self.context * self.slots),
            "-t", str(self.threads),
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> LlamaServer:
        """Start the process and wait until ``/health`` says the model is loaded."""
        if self.process is not None:
            return self
        if self.port is None:
            self.port = _free_port(self.host)
        with self._log_path.open("ab") as log:  # the child keeps its own handle
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + self.ready_timeout
        health = f"http://{self.host}:{self.port}/health"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise ModelError(
                    f"llama-server exited with status {code} while loading "
                    f"{self.model_path.name}. Its output ends:\n{self.log_tail()}"
                )
            try:
                if httpx.get(health, timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.2)
        self.stop()
        raise ModelError(
            f"llama-server did not become ready within {self.ready_timeout:g} s. Its "
            f"output ends:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """End the process at once (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
