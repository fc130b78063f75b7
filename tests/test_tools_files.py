"""Workspace file tools: every way out of the root is refused; the way in works."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentkit._errors import ConfigError, ToolError
from agentkit.runtime._tools import Tool
from agentkit.tools import Workspace

INSIDE = "must stay inside the workspace"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("TOP SECRET password\n")
    return folder


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "sub" / "deep").mkdir(parents=True)
    (ws / "a.txt").write_text("alpha\nbeta\ngamma\n")
    (ws / "sub" / "inner.txt").write_text("inner line\nanother Beta line\n")
    (ws / "sub" / "deep" / "x.py").write_text("print('hi')\n")
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("beta in a hidden folder\n")
    (ws / "link_out.txt").symlink_to(outside / "secret.txt")
    (ws / "dir_out").symlink_to(outside, target_is_directory=True)
    (ws / "sub" / "up").symlink_to(outside, target_is_directory=True)
    (ws / "link_in.txt").symlink_to(ws / "sub" / "inner.txt")
    return ws


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace(root)


def by_name(workspace: Workspace) -> dict[str, Tool]:
    return {t.name: t for t in workspace.tools()}


ESCAPES = [
    "../outside/secret.txt",
    "sub/../../outside/secret.txt",
    "sub/deep/../../../outside/secret.txt",
    "./../outside/secret.txt",
    "link_out.txt",
    "dir_out/secret.txt",
    "sub/up/secret.txt",
    "/etc/passwd",
    "~/.bashrc",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_read_outside_is_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(ToolError, match=INSIDE):
        ws.read_file(path)


def test_absolute_path_to_a_real_outside_file_is_refused(ws: Workspace, outside: Path) -> None:
    with pytest.raises(ToolError, match=INSIDE):
        ws.read_file(str(outside / "secret.txt"))
    # Even an absolute path that points inside: the model must use relative paths.
    with pytest.raises(ToolError, match="absolute"):
        ws.read_file(str(Path(ws.root) / "a.txt"))


@pytest.mark.parametrize("path", [*ESCAPES, "dir_out/new.txt", "sub/up/new.txt", "../new.txt"])
def test_write_outside_is_refused_and_changes_nothing(
    ws: Workspace, outside: Path, path: str
) -> None:
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(ToolError, match=INSIDE):
        ws.write_file(path, "overwritten")
    assert sorted(p.name for p in outside.iterdir()) == before
    assert (outside / "secret.txt").read_text() == "TOP SECRET password\n"


@pytest.mark.parametrize("path", ["..", "dir_out", "sub/up", "sub/../..", "/", "/tmp"])
def test_list_outside_is_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(ToolError, match=INSIDE):
        ws.list_files(path)


@pytest.mark.parametrize("path", ["..", "dir_out", "link_out.txt", "sub/../../outside"])
def test_search_outside_is_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(ToolError, match=INSIDE):
        ws.search_files("SECRET", path)


def test_search_of_the_root_does_not_follow_links_out(ws: Workspace) -> None:
    assert ws.search_files("SECRET", ignore_case=True).startswith("no matches")


def test_recursive_listing_does_not_enter_links_out(ws: Workspace) -> None:
    listing = ws.list_files(recursive=True)
    assert "dir_out (link)" in listing
    assert "secret" not in listing


async def test_escape_through_ainvoke_is_an_error_for_the_model(ws: Workspace) -> None:
    tools = by_name(ws)
    with pytest.raises(ToolError, match=INSIDE):
        await tools["read_file"].ainvoke({"path": "sub/../../outside/secret.txt"})


def test_legit_relative_paths_work(ws: Workspace) -> None:
    assert ws.read_file("a.txt") == "alpha\nbeta\ngamma\n"
    assert ws.read_file("./sub/inner.txt").startswith("inner line")
    assert ws.read_file("sub/deep/../inner.txt").startswith("inner line")
    assert ws.read_file("link_in.txt").startswith("inner line")  # a link that stays inside


def test_root_given_through_a_symlink_works(root: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert Workspace(alias).read_file("a.txt").startswith("alpha")


def test_read_pages_through_a_long_file(root: Path) -> None:
    (root / "long.txt").write_text("".join(f"line {i:03d}\n" for i in range(1, 101)))
    ws = Workspace(root, max_read_chars=100)
    first = ws.read_file("long.txt")
    assert first.startswith("line 001\n")
    assert "lines 1-11 of 100 shown" in first
    assert "start_line=12" in first
    second = ws.read_file("long.txt", start_line=12)
    assert second.startswith("line 012\n")
    last = ws.read_file("long.txt", start_line=95)
    assert last.endswith("line 100\n")
    with pytest.raises(ToolError, match="past the end"):
        ws.read_file("long.txt", start_line=101)


def test_read_cuts_a_giant_line(root: Path) -> None:
    (root / "one_line.json").write_text("x" * 10_000)
    text = Workspace(root, max_read_chars=500).read_file("one_line.json")
    assert len(text) < 600
    assert "more characters on this line" in text


def test_read_refusals(ws: Workspace, root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\x89PNG\x00\x00binary")
    (root / "empty.txt").write_text("")
    with pytest.raises(ToolError, match="binary"):
        ws.read_file("blob.bin")
    with pytest.raises(ToolError, match=r"no file 'missing\.txt'"):
        ws.read_file("missing.txt")
    with pytest.raises(ToolError, match="folder"):
        ws.read_file("sub")
    with pytest.raises(ToolError, match="NUL"):
        ws.read_file("a.txt\x00.png")
    assert "empty" in ws.read_file("empty.txt")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_reading_a_fifo_does_not_hang(ws: Workspace, root: Path) -> None:
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        ws.read_file("pipe")


def test_write_creates_folders_and_replaces_atomically(ws: Workspace, root: Path) -> None:
    assert ws.write_file("notes/today/todo.txt", "buy milk\n") == (
        "wrote 9 bytes to notes/today/todo.txt (new file)"
    )
    assert (root / "notes" / "today" / "todo.txt").read_text() == "buy milk\n"
    os.chmod(root / "a.txt", 0o640)
    assert "(replaced)" in ws.write_file("a.txt", "new\n")
    assert (root / "a.txt").read_text() == "new\n"
    assert (root / "a.txt").stat().st_mode & 0o777 == 0o640  # permissions kept
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]


def test_write_through_an_inside_link_writes_its_target(ws: Workspace, root: Path) -> None:
    ws.write_file("link_in.txt", "via link\n")
    assert (root / "sub" / "inner.txt").read_text() == "via link\n"


def test_write_refusals(root: Path) -> None:
    ws = Workspace(root, max_write_bytes=10)
    with pytest.raises(ToolError, match="at most 10"):
        ws.write_file("big.txt", "x" * 11)
    with pytest.raises(ToolError, match="directory"):
        ws.write_file("sub", "x")
    with pytest.raises(ToolError, match="directory"):
        ws.write_file(".", "x")
    with pytest.raises(ToolError, match="in the way"):
        ws.write_file("a.txt/child.txt", "x")


def test_list_files(ws: Workspace) -> None:
    listing = ws.list_files().splitlines()
    assert listing[:3] == [".git/", "a.txt (17 bytes)", "dir_out (link)"]
    assert "sub/" in listing
    assert ws.list_files("sub").splitlines() == [
        "deep/", "inner.txt (29 bytes)", "up (link)"
    ]  # fmt: skip
    deep = ws.list_files(recursive=True)
    assert "sub/deep/x.py (12 bytes)" in deep
    assert ".git/" in deep and ".git/config" not in deep  # hidden folders are not entered
    with pytest.raises(ToolError, match="is a file"):
        ws.list_files("a.txt")
    with pytest.raises(ToolError, match="no folder"):
        ws.list_files("nope")


def test_list_files_is_capped(root: Path) -> None:
    for i in range(30):
        (root / f"f{i:02d}.txt").write_text("")
    listing = Workspace(root, max_results=10).list_files().splitlines()
    assert len(listing) == 11
    assert "more entries not shown" in listing[-1]


def test_search_files(ws: Workspace, root: Path) -> None:
    assert ws.search_files("beta") == "a.txt:2: beta"  # hidden .git is skipped
    assert ws.search_files("beta", ignore_case=True).splitlines() == [
        "a.txt:2: beta",
        "sub/inner.txt:2: another Beta line",
    ]
    assert ws.search_files(r"^(alpha|gamma)$", regex=True).splitlines() == [
        "a.txt:1: alpha",
        "a.txt:3: gamma",
    ]
    assert ws.search_files("inner", path="sub/inner.txt") == "sub/inner.txt:1: inner line"
    assert ws.search_files("a.b", path="sub").startswith("no matches")  # literal, not regex
    with pytest.raises(ToolError, match="invalid regular expression"):
        ws.search_files("(unclosed", regex=True)
    with pytest.raises(ToolError, match="empty"):
        ws.search_files("")


def test_search_is_capped(root: Path) -> None:
    (root / "many.txt").write_text("hit\n" * 50)
    hits = Workspace(root, max_results=5).search_files("hit").splitlines()
    assert len(hits) == 6
    assert "stopped after 5 matches" in hits[-1]


def test_read_only_workspace(root: Path) -> None:
    ws = Workspace(root, read_only=True)
    assert sorted(by_name(ws)) == ["list_files", "read_file", "search_files"]
    with pytest.raises(ToolError, match="read-only"):
        ws.write_file("a.txt", "x")


def test_delete_only_when_allowed(root: Path, outside: Path) -> None:
    assert "delete_file" not in by_name(Workspace(root))
    with pytest.raises(ToolError, match="allow_delete=True"):
        Workspace(root).delete_file("a.txt")
    ws = Workspace(root, allow_delete=True)
    assert "delete_file" in by_name(ws)
    assert ws.delete_file("a.txt") == "deleted a.txt"
    assert not (root / "a.txt").exists()
    # Deleting a link that leads out removes the link, never its target.
    ws.delete_file("link_out.txt")
    assert not (root / "link_out.txt").is_symlink()
    assert (outside / "secret.txt").exists()
    for path in ("../outside/secret.txt", "dir_out/secret.txt", str(outside / "secret.txt")):
        with pytest.raises(ToolError, match=INSIDE):
            ws.delete_file(path)
    assert (outside / "secret.txt").exists()
    with pytest.raises(ToolError, match="files only"):
        ws.delete_file("sub")
    with pytest.raises(ToolError, match="does not name a file"):
        ws.delete_file("sub/..")


def test_bad_configuration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an existing directory"):
        Workspace(tmp_path / "missing")
    with pytest.raises(ConfigError):
        Workspace(tmp_path, read_only=True, allow_delete=True)


async def test_tools_work_through_ainvoke(ws: Workspace) -> None:
    tools = by_name(ws)
    assert await tools["write_file"].ainvoke({"path": "n.txt", "content": "hi\n"})
    assert await tools["read_file"].ainvoke({"path": "n.txt"}) == "hi\n"
    assert "n.txt" in await tools["list_files"].ainvoke({})
    assert await tools["search_files"].ainvoke({"query": "hi", "path": "n.txt"}) == "n.txt:1: hi"


def test_every_tool_has_a_schema(root: Path) -> None:
    tools = by_name(Workspace(root, allow_delete=True))
    assert sorted(tools) == [
        "delete_file", "list_files", "read_file", "search_files", "write_file"
    ]  # fmt: skip
    for t in tools.values():
        spec = t.spec  # raises ConfigError on any problem
        assert spec.description
        for prop in spec.parameters["properties"].values():
            assert prop.get("description"), f"{t.name}: an argument without a description"
    assert tools["read_file"].spec.parameters["required"] == ["path"]
    assert tools["write_file"].spec.parameters["required"] == ["path", "content"]


# -- regular expressions that would never finish -----------------------------------------


@pytest.mark.parametrize(
    "pattern", [r"(a|aa)+$", r"(a|a)+$", r"(.*?,){30}X"]
)  # fmt: skip
def test_catastrophic_regex_is_stopped_with_advice(root: Path, pattern: str) -> None:
    (root / "trap.txt").write_text("a" * 40 + "b\n" + "a," * 40 + "\n")
    ws = Workspace(root, search_timeout=0.3)
    with pytest.raises(ToolError, match=r"ran past its 0.3 s limit at trap.txt:\d") as info:
        ws.search_files(pattern, path="trap.txt", regex=True)
    assert "(a+)+" in str(info.value) and "regex=false" in str(info.value)
    # The same text as a plain string is matched literally, in linear time.
    assert ws.search_files(pattern, path="trap.txt").startswith("no matches")


def test_the_pattern_from_the_issue_finishes(root: Path) -> None:
    # (a+)+$ on a 31-character line took 53 s with the re module.
    (root / "line.txt").write_text("a" * 30 + "!\n")
    ws = Workspace(root)
    assert ws.search_files("(a+)+$", "line.txt", regex=True).startswith("no matches")
    (root / "line.txt").write_text("a" * 30 + "\n")
    assert ws.search_files("(a+)+$", "line.txt", regex=True) == f"line.txt:1: {'a' * 30}"


def test_search_timeout_must_be_positive(root: Path) -> None:
    with pytest.raises(ConfigError, match="search_timeout"):
        Workspace(root, search_timeout=0)


# -- hard links --------------------------------------------------------------------------


def test_hard_link_to_an_outside_file_is_refused(root: Path, outside: Path) -> None:
    os.link(outside / "secret.txt", root / "innocent.txt")
    ws = Workspace(root)
    with pytest.raises(ToolError, match="hard link") as info:
        ws.read_file("innocent.txt")
    assert "TOP SECRET" not in str(info.value)
    found = ws.search_files("SECRET", ignore_case=True)
    assert "TOP SECRET" not in found
    assert found.splitlines() == [
        "no matches for 'SECRET' in .",
        "[1 hard-linked file(s) skipped: their other links are not all inside the workspace]",
    ]
    # Writing replaces the link with a new file: the outside file keeps its bytes.
    ws.write_file("innocent.txt", "mine now")
    assert (outside / "secret.txt").read_text() == "TOP SECRET password\n"
    assert ws.read_file("innocent.txt") == "mine now"


def test_hard_links_that_stay_inside_are_read(root: Path) -> None:
    os.link(root / "a.txt", root / "sub" / "twin.txt")
    ws = Workspace(root)
    assert ws.read_file("sub/twin.txt") == "alpha\nbeta\ngamma\n"
    assert ws.search_files("gamma").splitlines() == ["a.txt:3: gamma", "sub/twin.txt:3: gamma"]


def test_hard_link_with_one_more_link_outside_is_refused(root: Path, outside: Path) -> None:
    # Two links inside and a third outside: counting only the inside ones would pass.
    os.link(root / "a.txt", root / "sub" / "twin.txt")
    os.link(root / "a.txt", outside / "copy.txt")
    with pytest.raises(ToolError, match="hard link"):
        Workspace(root).read_file("sub/twin.txt")


# -- very deep and very long paths -------------------------------------------------------


def _deep_tree(root: Path, levels: int) -> str:
    """``d/d/.../d`` ``levels`` deep below root, made with dir fds (no long path strings)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        made = os.open("needle.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(made, "w") as f:
            f.write("a needle deep down\n")
    finally:
        os.close(fd)
    return "d/" * levels


@pytest.fixture
def low_recursion_limit() -> Iterator[int]:
    """A recursion limit a few hundred frames above where the test runs, so a tree some
    hundreds of levels deep proves the walks do not recurse (without a thousand folders)."""
    before = sys.getrecursionlimit()
    depth = len(inspect.stack(0))
    sys.setrecursionlimit(depth + 150)
    yield depth + 150
    sys.setrecursionlimit(before)


def test_a_tree_deeper_than_the_recursion_limit_works(
    tmp_path: Path, low_recursion_limit: int
) -> None:
    deep = _deep_tree(tmp_path, 300)
    ws = Workspace(tmp_path, max_results=5000)
    assert ws.search_files("needle") == f"{deep}needle.txt:1: a needle deep down"
    listing = ws.list_files(recursive=True).splitlines()
    assert listing[-1] == f"{deep}needle.txt (19 bytes)"
    assert ws.write_file(f"{deep}more/{'e/' * 200}new.txt", "x").startswith("wrote 1 bytes")
    assert ws.read_file(f"{deep}more/{'e/' * 200}new.txt") == "x"


LONG_PATHS = ["a/" * 2100 + "x.txt", "n" * 256, "sub/" + "é" * 200 + ".txt"]


@pytest.mark.parametrize("path", LONG_PATHS)
def test_paths_too_long_are_refused(root: Path, path: str) -> None:
    ws = Workspace(root, allow_delete=True)
    for call in (
        lambda: ws.read_file(path),
        lambda: ws.write_file(path, "x"),
        lambda: ws.list_files(path),
        lambda: ws.search_files("x", path=path),
        lambda: ws.delete_file(path),
    ):
        with pytest.raises(ToolError, match="too long") as info:
            call()
        assert len(str(info.value)) < 400  # the path is quoted clipped, not whole


def test_a_path_longer_than_the_system_allows_is_a_tool_error(root: Path) -> None:
    # Under the limit on what a call may pass, over PATH_MAX once joined to the root.
    ws = Workspace(root, allow_delete=True)
    path = "e/" * ((4096 - 5) // 2) + "f.txt"
    assert len(path) <= 4096 < len(os.path.join(ws.root, path))
    for call in (
        lambda: ws.read_file(path),
        lambda: ws.write_file(path, "x"),
        lambda: ws.list_files(path),
        lambda: ws.search_files("x", path=path),
        lambda: ws.delete_file(path),
    ):
        with pytest.raises(ToolError, match=r"too long|cannot delete"):
            call()
    assert not (root / "e").exists()  # no folders were made on the way to the refusal


def test_a_long_chain_of_symlinks_is_a_tool_error(root: Path, low_recursion_limit: int) -> None:
    for n in range(300):
        (root / f"l{n}").symlink_to(f"l{n + 1}")
    (root / "l300").write_text("end of the chain\n")
    with pytest.raises(ToolError, match="too many links"):
        Workspace(root).read_file("l0")
