"""A throwaway PostgreSQL server on 127.0.0.1, for tests and benchmarks of the shared store.

It runs the server programs of an installed PostgreSQL (Debian's ``postgresql`` package
puts them in ``/usr/lib/postgresql/VERSION/bin``; ``AGENTKIT_PG_BIN`` names another
folder): ``initdb`` into a new temporary folder, ``pg_ctl start`` on a free port with TCP
on 127.0.0.1 only and a random password, and at ``stop`` the server is stopped and the
folder deleted. PostgreSQL refuses to run as root, so under root the programs run as the
``postgres`` system user that Debian's package creates (``nobody`` where it is missing),
through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

from .._errors import StoreError

__all__ = ["TemporaryPostgres"]

_USER = "agentkit"
_START_TRIES = 3  # the free port found may be taken by someone else before the server binds


def _server_bin() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``."""
    named = os.environ.get("AGENTKIT_PG_BIN")
    if named:
        return Path(named)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: [int(x) for x in p.parent.parent.name.split(".") if x.isdigit()],
    )
    if installed:
        return installed[-1].parent
    raise StoreError(
        "no PostgreSQL server programs (initdb, pg_ctl) found: install them (Debian: "
        "apt-get install postgresql; `make setup` does it when run as root) or set "
        "AGENTKIT_PG_BIN to their folder"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryPostgres:
    """A PostgreSQL server of its own, started by ``start`` (or ``with``), gone after ``stop``.

    ``durable=False`` (the default, for tests) turns off fsync: a crash of the machine may
    lose the data, which a throwaway server does not mind. ``url`` reaches its
    maintenance database; ``create_database`` makes a fresh one and gives its URL.
    """

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.port = 0
        self._password = secrets.token_urlsafe(18)
        self._root: Path | None = None
        self._bin = _server_bin()
        self._runas = self._user() if os.geteuid() == 0 else None

    @staticmethod
    def _user() -> str:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            return name
        raise StoreError(
            "PostgreSQL does not run as root and this machine has neither a postgres nor a "
            "nobody user; create one (useradd --system postgres) or run as another user"
        )

    @property
    def url(self) -> str:
        """A URL of the server's ``postgres`` database (with its password)."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return f"postgresql://{_USER}:{self._password}@127.0.0.1:{self.port}/{name}"

    def __repr__(self) -> str:  # never the password
        return f"TemporaryPostgres(127.0.0.1:{self.port}, running={self._root is not None})"

    # -- the server ------------------------------------------------------------------

    def start(self) -> TemporaryPostgres:
        """initdb into a temporary folder and start the server (StoreError if it cannot)."""
        if self._root is not None:
            return self
        root = Path(tempfile.mkdtemp(prefix="agentkit-pg-"))
        self._root = root
        try:
            (root / "pw").write_text(self._password)
            if self._runas is not None:
                account = pwd.getpwnam(self._runas)
                for path in (root, root / "pw"):
                    os.chown(path, account.pw_uid, account.pw_gid)
            self._run(
                "initdb", "-D", str(root / "data"), "-U", _USER, "-A", "scram-sha-256",
                "--pwfile", str(root / "pw"), "-E", "UTF8", "--no-locale", "--no-sync",
            )  # fmt: skip
            (root / "pw").unlink()
            self._start_server(root)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self, root: Path) -> None:
        base = (root / "data" / "postgresql.conf").read_text()
        for attempt in range(_START_TRIES):
            self.port = _free_port()
            settings = [
                "listen_addresses = '127.0.0.1'",
                f"port = {self.port}",
                "unix_socket_directories = ''",  # TCP only: no socket folder to own
                "max_connections = 200",
            ]
            if not self.durable:
                settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
            (root / "data" / "postgresql.conf").write_text(base + "\n".join(settings) + "\n")
            try:
                self._run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"),
                          "-w", "-t", "60", "start")  # fmt: skip
                return
            except StoreError:
                if attempt == _START_TRIES - 1:
                    raise

    def stop(self) -> None:
        """Stop the server and delete its folder (nothing happens if it is not running)."""
        root, self._root = self._root, None
        if root is None:
            return
        try:
            if (root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(root / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if self._runas is not None:
            command = ["runuser", "-u", self._runas, "--", *command]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(f"cannot run {program} for a local PostgreSQL: {exc}") from exc
        if done.returncode != 0:
            log = self._root / "log" if self._root is not None else None
            tail = log.read_text()[-1500:] if log is not None and log.exists() else ""
            raise StoreError(
                f"{program} failed for a local PostgreSQL (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-1500:]}\n{tail}".rstrip()
            )

    # -- databases --------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (a random name unless given); its URL."""
        name = name or f"agentkit_{uuid.uuid4().hex[:12]}"
        self._admin("CREATE DATABASE {}", name)
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the sessions still connected to it."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def _admin(self, statement: str, name: str) -> None:
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql.SQL(statement).format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise StoreError(f"local PostgreSQL on port {self.port}: {exc}") from exc
