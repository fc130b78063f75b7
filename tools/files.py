"""File tools confined to one directory: ``Workspace(root).tools()``.

Every path a model passes is taken relative to the workspace root, resolved with
``os.path.realpath`` (which follows ``..`` and every symlink, parents included), and
refused unless the result is still inside the root. Files are then opened with
``O_NOFOLLOW``, so a final component that turned into a symlink after the check is not
followed either. Writes go to a temporary file in the same folder and are renamed over
the target, so a reader never sees half a file.

A hard link is a second name for a file, so one made inside the workspace to a file
outside would read that file through a path that never leaves the root. A file with more
than one link is therefore read (or searched) only when every one of its links is inside
the workspace, found by device and inode in one bounded walk of the workspace; otherwise
it is refused. Writes replace the file with a new one, so they never reach through a link.

Regular expressions come from the model, and a pattern such as ``(a|aa)+$`` can take
exponential time. They run on the ``regex`` engine with a time limit for the whole
search, which also releases the GIL while it matches; a pattern past its limit is
reported to the model with what to do instead.

The boundary protects against a model's mistakes and against links that lead out; it
is not a defence against another local process racing to swap folders for symlinks.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import time
from collections.abc import Iterator
from typing import BinaryIO

import regex as rx

from agentkit import ConfigError, Tool, ToolError

__all__ = ["Workspace"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# Opening a FIFO for reading blocks until a writer appears; O_NONBLOCK returns at once
# and the regular-file check below then refuses it.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY_SNIFF = 8192
MAX_FILE_BYTES = 20_000_000
"""Files larger than this are neither read nor searched."""
_MAX_MATCH_CHARS = 200  # one search hit, as shown
_MAX_SEARCHED_LINE = 4000  # longer lines are matched on their start only
_MAX_PATH_CHARS = 4096  # PATH_MAX on Linux; longer ones cannot be opened anyway
_MAX_NAME_BYTES = 255  # NAME_MAX on Linux, macOS and Windows
_LINK_SCAN_LIMIT = 50_000
"""Entries walked, at most, to find where the other hard links of a file are."""


class Workspace:
    """A folder an agent may work in, and the file tools that cannot leave it.

    ``tools()`` returns ``read_file``, ``list_files``, ``search_files`` and, unless
    ``read_only``, ``write_file``; ``delete_file`` only with ``allow_delete=True``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        read_only: bool = False,
        allow_delete: bool = False,
        max_read_chars: int = 6000,
        max_write_bytes: int = 1_000_000,
        max_results: int = 100,
        search_timeout: float = 2.0,
    ) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ConfigError(
                f"workspace root {os.fspath(root)!r} is not an existing directory; create it first"
            )
        if read_only and allow_delete:
            raise ConfigError("a read_only workspace cannot allow_delete; choose one")
        if min(max_read_chars, max_write_bytes, max_results) < 1 or search_timeout <= 0:
            raise ConfigError(
                "workspace limits (max_read_chars, ..., search_timeout) must be positive"
            )
        self.root = real
        self.read_only = read_only
        self.allow_delete = allow_delete
        self.max_read_chars = max_read_chars
        self.max_write_bytes = max_write_bytes
        self.max_results = max_results
        self.search_timeout = search_timeout
        try:
            self._path_max = os.pathconf(real, "PC_PATH_MAX")
        except (OSError, ValueError):  # no such limit here (Windows): the common one
            self._path_max = 4096

    def __repr__(self) -> str:
        return f"Workspace({self.root!r}, read_only={self.read_only})"

    def tools(self) -> list[Tool]:
        """The file tools for an agent, all bound to this workspace."""
        # Room for the trim note, so Tool.render never cuts what read_file already sized.
        limit = self.max_read_chars + 500
        made = [
            Tool(self.read_file, max_output_chars=limit, idempotent=True),
            Tool(self.list_files, max_output_chars=limit, idempotent=True),
            Tool(self.search_files, max_output_chars=limit, idempotent=True),
        ]
        if not self.read_only:
            made.append(Tool(self.write_file, idempotent=True))
        if self.allow_delete:
            made.append(Tool(self.delete_file, idempotent=True))
        return made

    # -- the tools ---------------------------------------------------------------------

    def read_file(self, path: str, start_line: int = 1) -> str:
        """Read a text file from the workspace. Long files come in parts: the end of the
        output then says which start_line reads on.

        Args:
            path: the file, relative to the workspace, for example "notes/todo.txt"
            start_line: the first line to show, counting from 1
        """
        if start_line < 1:
            raise ToolError("start_line counts from 1")
        full = self._resolve(path)
        with self._open_file(full, path) as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ToolError(
                f"{path!r} is larger than {MAX_FILE_BYTES // 1_000_000} MB; "
                "use search_files to find the lines you need"
            )
        if b"\x00" in data[:_BINARY_SNIFF]:
            raise ToolError(
                f"{path!r} is a binary file ({len(data)} bytes); read_file shows text only"
            )
        lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
        if not lines:
            return f"({path} is empty)"
        if start_line > len(lines):
            raise ToolError(
                f"start_line {start_line} is past the end: {path} has {len(lines)} lines"
            )
        shown: list[str] = []
        size = 0
        last = start_line - 1
        for last in range(start_line - 1, len(lines)):
            line = lines[last]
            if len(line) > self.max_read_chars:
                cut = len(line) - self.max_read_chars
                line = f"{line[: self.max_read_chars]}[... {cut} more characters on this line]\n"
            if shown and size + len(line) > self.max_read_chars:
                last -= 1
                break
            shown.append(line)
            size += len(line)
        text = "".join(shown)
        if last + 1 < len(lines):
            text += (
                f"\n[lines {start_line}-{last + 1} of {len(lines)} shown; call read_file with "
                f"start_line={last + 2} to read on]"
            )
        return text

    def write_file(self, path: str, content: str) -> str:
        """Create or replace a text file in the workspace with the given content.
        Folders on the way are created. To change a file, read it, then write it whole.

        Args:
            path: the file, relative to the workspace, for example "notes/todo.txt"
            content: the complete new text of the file
        """
        self._require_writable()
        data = content.encode("utf-8")
        if len(data) > self.max_write_bytes:
            raise ToolError(
                f"the content is {len(data)} bytes; write_file takes at most "
                f"{self.max_write_bytes}. Split it into several files."
            )
        full = self._resolve(path)
        shown = _clip(path)
        if full == self.root or os.path.isdir(full):
            raise ToolError(f"{shown!r} is a directory; give a file name inside it")
        parent, name = os.path.split(full)
        try:
            _make_folders(self.root, parent)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ToolError(
                f"cannot create the folders for {shown!r}: a file is in the way"
            ) from exc
        except OSError as exc:
            raise ToolError(f"cannot create the folders for {shown!r}: {exc.strerror}") from exc
        existed = os.path.exists(full)
        try:
            _atomic_write(parent, name, data)
        except OSError as exc:  # permissions, a full disk, a name too long
            raise ToolError(f"cannot write {shown!r}: {exc.strerror or exc}") from exc
        rel = self._relative(full)
        return f"wrote {len(data)} bytes to {rel} ({'replaced' if existed else 'new file'})"

    def list_files(self, path: str = ".", recursive: bool = False) -> str:
        """List the files and folders in a workspace folder (folders end with "/").

        Args:
            path: the folder, relative to the workspace; "." is the workspace itself
            recursive: also list everything below, except inside hidden folders such as .git
        """
        full = self._resolve(path)
        if not os.path.isdir(full):
            if os.path.exists(full):
                raise ToolError(f"{path!r} is a file, not a folder; use read_file")
            raise ToolError(f"no folder {path!r} in the workspace; list '.' to see what exists")
        lines: list[str] = []
        entries = self._walk(full) if recursive else self._scan(full)
        try:
            for line in entries:
                if len(lines) >= self.max_results:
                    lines.append(
                        f"[more entries not shown: only the first {self.max_results} are "
                        "listed; list a subfolder]"
                    )
                    break
                lines.append(line)
        except OSError as exc:
            raise ToolError(f"cannot list {path!r}: {exc.strerror or exc}") from exc
        return "\n".join(lines) if lines else f"({self._relative(full)} is empty)"

    def search_files(
        self, query: str, path: str = ".", regex: bool = False, ignore_case: bool = False
    ) -> str:
        """Find the lines of text files in the workspace that contain a string or match a
        regular expression. Each hit is shown as path:line: text.

        Args:
            query: the text to look for (a Python regular expression if regex is true)
            path: a folder (searched with everything below it) or a single file
            regex: treat query as a regular expression instead of plain text
            ignore_case: match upper and lower case alike
        """
        if not query:
            raise ToolError("query is empty; give the text to look for")
        flags = rx.VERSION0 | (rx.IGNORECASE if ignore_case else 0)
        try:
            pattern = rx.compile(query if regex else rx.escape(query), flags)
        except (rx.error, RecursionError, OverflowError, ValueError) as exc:
            raise ToolError(f"invalid regular expression {_clip(query)!r}: {exc}") from exc
        full = self._resolve(path)
        if os.path.isdir(full):
            files: Iterator[str] = self._walk_files(full)
        elif os.path.isfile(full):
            files = iter([full])
        else:
            raise ToolError(f"no file or folder {_clip(path)!r} in the workspace")
        search = _Search(pattern, regex, self.search_timeout, _LinkIndex(self.root))
        hits: list[str] = []
        for file in files:
            for number, line in self._text_lines(file, search.links):
                if search.matches(line, query, f"{self._relative(file)}:{number}"):
                    text = line.strip()
                    if len(text) > _MAX_MATCH_CHARS:
                        text = text[:_MAX_MATCH_CHARS] + "..."
                    hits.append(f"{self._relative(file)}:{number}: {text}")
                    if len(hits) >= self.max_results:
                        hits.append(
                            f"[stopped after {self.max_results} matches; narrow the query or path]"
                        )
                        return "\n".join(hits)
        if search.links.skipped:
            hits.append(
                f"[{search.links.skipped} hard-linked file(s) skipped: their other links are "
                "not all inside the workspace]"
            )
        if not hits or hits[0].startswith("["):
            return "\n".join([f"no matches for {_clip(query)!r} in {self._relative(full)}", *hits])
        return "\n".join(hits)

    def delete_file(self, path: str) -> str:
        """Delete a file from the workspace (not a folder). This cannot be undone.

        Args:
            path: the file, relative to the workspace
        """
        self._require_writable()
        if not self.allow_delete:
            raise ToolError(
                "deleting is disabled for this workspace; the agent's author can enable it "
                "with Workspace(root, allow_delete=True)"
            )
        # Delete the named entry itself: for a symlink, the link, never what it points at.
        shown = _clip(path)
        _check_length(path.strip(), shown)
        head, name = os.path.split(path.strip().rstrip("/"))
        if name in ("", ".", ".."):
            raise ToolError(f"{shown!r} does not name a file")
        parent = self._resolve(head or ".", shown=path)
        target = os.path.join(parent, name)
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError as exc:
            raise ToolError(f"no file {shown!r} in the workspace") from exc
        except OSError as exc:
            raise ToolError(f"cannot delete {shown!r}: {exc.strerror or exc}") from exc
        if stat.S_ISDIR(mode):
            raise ToolError(f"{shown!r} is a folder; delete_file deletes files only")
        try:
            os.unlink(target)
        except OSError as exc:
            raise ToolError(f"cannot delete {shown!r}: {exc.strerror or exc}") from exc
        return f"deleted {self._relative(target)}"

    # -- the boundary ------------------------------------------------------------------

    def _resolve(self, path: str, *, shown: str | None = None) -> str:
        """The real absolute path for ``path``, or ToolError if it leaves the workspace."""
        cleaned = path.strip()
        shown = _clip(path if shown is None else shown)
        if "\x00" in cleaned:
            raise ToolError("the path contains a NUL character")
        if os.path.isabs(cleaned) or cleaned.startswith("~"):
            raise self._escape_error(shown, "absolute paths and ~ are not allowed")
        _check_length(cleaned, shown)
        try:
            full = os.path.realpath(os.path.join(self.root, cleaned or "."))
        except (OSError, RecursionError) as exc:  # a very long chain of symlinks
            raise ToolError(f"cannot resolve {shown!r}: it goes through too many links") from exc
        if os.path.commonpath([self.root, full]) != self.root:
            reason = "'..' leads out of it" if ".." in cleaned else "a symlink leads out of it"
            raise self._escape_error(shown, reason)
        if len(os.fsencode(full)) >= self._path_max:
            # Refused before anything is made: write_file would otherwise create folders
            # until the system refused the next one.
            raise ToolError(
                f"the path {shown!r} is too long once inside the workspace folder "
                f"(this system allows {self._path_max - 1} bytes); use a shorter path"
            )
        return full

    def _escape_error(self, path: str, reason: str) -> ToolError:
        return ToolError(
            f"refused {path!r}: the path must stay inside the workspace ({reason}). "
            "Use a path relative to the workspace root, such as 'notes/todo.txt'."
        )

    def _relative(self, full: str) -> str:
        return os.path.relpath(full, self.root)

    def _require_writable(self) -> None:
        if self.read_only:
            raise ToolError(
                "this workspace is read-only; the agent's author can allow changes with "
                "Workspace(root, read_only=False)"
            )

    def _open_file(self, full: str, shown: str) -> BinaryIO:
        try:
            fd = os.open(full, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except FileNotFoundError as exc:
            raise ToolError(
                f"no file {_clip(shown)!r} in the workspace; use list_files to look"
            ) from exc
        except OSError as exc:
            raise ToolError(f"cannot open {_clip(shown)!r}: {exc.strerror}") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            kind = "a folder; use list_files" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ToolError(f"{shown!r} is {kind}")
        if not _LinkIndex(self.root).all_inside(st):
            os.close(fd)
            raise ToolError(
                f"refused {shown!r}: it is a hard link, and not all of its links are inside "
                "the workspace, so it may be a file from outside. The agent's author can copy "
                "the file into the workspace instead of linking it."
            )
        return os.fdopen(fd, "rb")

    # -- walking -----------------------------------------------------------------------

    def _scan(self, folder: str) -> Iterator[str]:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            yield self._describe(entry.path, entry.name)

    def _walk(self, folder: str) -> Iterator[str]:
        for dirpath, dirnames, filenames in _walk_tree(folder):
            for name in [*dirnames, *filenames]:
                yield self._describe(os.path.join(dirpath, name), None)
            # Listed, but not entered: .git and friends would drown everything else.
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]

    def _describe(self, full: str, name: str | None) -> str:
        shown = name if name is not None else self._relative(full)
        try:
            st = os.lstat(full)
        except OSError:
            return shown
        if stat.S_ISLNK(st.st_mode):
            return f"{shown} (link)"
        if stat.S_ISDIR(st.st_mode):
            return f"{shown}/"
        return f"{shown} ({st.st_size} bytes)"

    def _walk_files(self, folder: str) -> Iterator[str]:
        for dirpath, dirnames, filenames in _walk_tree(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                yield os.path.join(dirpath, name)

    def _text_lines(self, full: str, links: _LinkIndex) -> Iterator[tuple[int, str]]:
        """Numbered lines of a regular text file; nothing for links, binaries, giants."""
        try:
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
                return
            if not links.all_inside(st):
                links.skipped += 1
                return
            fd = os.open(full, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except OSError:
            return
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_FILE_BYTES)
        if b"\x00" in data[:_BINARY_SNIFF]:
            return
        yield from enumerate(data.decode("utf-8", errors="replace").splitlines(), 1)


class _Search:
    """One search_files call: its pattern, the time it may take, and its link index."""

    def __init__(
        self, pattern: rx.Pattern[str], is_regex: bool, timeout: float, links: _LinkIndex
    ) -> None:
        self.pattern = pattern
        self.is_regex = is_regex
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.links = links

    def matches(self, line: str, query: str, where: str) -> bool:
        """Whether ``line`` matches; ToolError once the search has used up its time."""
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            return self.pattern.search(line, 0, _MAX_SEARCHED_LINE, timeout=left) is not None
        except TimeoutError as exc:
            raise ToolError(self._too_slow(query, where)) from exc

    def _too_slow(self, query: str, where: str) -> str:
        said = f"the search for {_clip(query)!r} ran past its {self.timeout:g} s limit at {where}"
        if not self.is_regex:
            return f"{said} and was stopped; search a smaller folder or a single file"
        return (
            f"{said} and was stopped. A regular expression with nested or overlapping "
            "repetition, such as (a+)+ or (a|aa)+, can take exponentially long: simplify it, "
            "anchor it to fixed text, or search for plain text (regex=false)."
        )


class _LinkIndex:
    """Where the hard links of files are: counted over the workspace on first need."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.skipped = 0
        self._counts: dict[tuple[int, int], int] | None = None

    def all_inside(self, st: os.stat_result) -> bool:
        """Whether every link of the file ``st`` describes is inside the workspace."""
        if st.st_nlink <= 1:
            return True
        if self._counts is None:
            self._counts = self._count()
        # Every link found inside, the file itself included: nothing of it is elsewhere.
        # A walk cut short by the limit can only find fewer, so it errs towards refusing.
        return self._counts.get((st.st_dev, st.st_ino), 0) >= st.st_nlink

    def _count(self) -> dict[tuple[int, int], int]:
        counts: dict[tuple[int, int], int] = {}
        seen = 0
        pending = [self.root]
        while pending and seen < _LINK_SCAN_LIMIT:
            try:
                with os.scandir(pending.pop()) as it:
                    entries = list(it)
            except OSError:
                continue
            for entry in entries:
                seen += 1
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        if st.st_nlink > 1:
                            key = (st.st_dev, st.st_ino)
                            counts[key] = counts.get(key, 0) + 1
                except OSError:
                    continue
        return counts


def _walk_tree(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` without recursion (a folder 2,000 levels deep is fine), sorted, top-down,
    never following symlinks; folders it cannot read are skipped, as os.walk does."""
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        dirnames: list[str] = []
        filenames: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            (dirnames if is_dir else filenames).append(entry.name)
        yield folder, dirnames, filenames
        # Reversed onto the stack, so folders are visited in name order (as os.walk).
        pending.extend(os.path.join(folder, d) for d in reversed(dirnames))


def _check_length(path: str, shown: str) -> None:
    if len(path) > _MAX_PATH_CHARS or any(
        len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES for part in path.split("/")
    ):
        raise ToolError(
            f"the path {shown!r} is too long (at most {_MAX_PATH_CHARS} characters, "
            f"{_MAX_NAME_BYTES} bytes per name); use a shorter path"
        )


def _make_folders(root: str, folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)`` one level at a time, below ``root``, without
    the recursion that a path of a thousand levels would exhaust."""
    current = root
    for part in os.path.relpath(folder, root).split(os.sep):
        if part in ("", "."):
            continue
        current = os.path.join(current, part)
        try:
            os.mkdir(current)
        except FileExistsError:
            if not os.path.isdir(current):
                raise


def _clip(text: str, limit: int = 160) -> str:
    """A path or query short enough to quote in a message."""
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 3 :]}"


def _atomic_write(folder: str, name: str, data: bytes) -> None:
    """Write to a temporary sibling, then rename it over ``name``."""
    target = os.path.join(folder, name)
    try:
        mode = stat.S_IMODE(os.stat(target, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        mode = 0o666  # the process umask still applies at creation, as for open()
    # Shortened, so a name near the length limit still leaves room for the suffix.
    temp = os.path.join(folder, f".{name[:100]}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
