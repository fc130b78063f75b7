"""Tidying a messy folder: files are sorted into subfolders by type.

What it shows: the ready ``Agent`` with the Workspace file tools (``list_files``,
``read_file``) plus one small tool of our own (``move_file``), all confined to one folder.
The script seeds a fresh sample folder in the system's temporary directory, prints its
tree, lets the agent tidy it, and prints the tree again with a count of files that ended
up where they belong. One file has no extension, so the agent has to read it to decide.

    .venv/bin/python examples/tidy_folder.py
    .venv/bin/python examples/tidy_folder.py --model qwen2.5-coder-1.5b-instruct

Exit status: the run's (0 succeeded, 1 failed, 3 step budget spent, 4 stopped by the loop
detectors); how tidy the folder ended up is reported, not part of the status.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from agentkit import (
    Agent,
    AgentState,
    ConsoleProgress,
    ResponsePlan,
    Sampling,
    Tool,
    ToolError,
    print_summary,
    tool,
)
from agentkit.tools import Workspace

APP = f"{Path(__file__).resolve()}:build_agent"
# The 0.5B model takes every step it can; a step where it starts repeating itself is
# redone on the 1.5B model.
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct"
# A fixed place (not a fresh mkdtemp) so that `agentkit runs resume` finds the same folder.
DEFAULT_FOLDER = Path(tempfile.gettempdir()) / "agentkit-tidy-folder"

SYSTEM_PROMPT = (
    "You organise files with tools. Steps:\n"
    "1. Call list_files to see the files.\n"
    "2. For each file, call move_file with the file name and its subfolder: documents for "
    ".txt and .md, images for .png and .jpg, data for .csv and .json, code for .py. "
    "For a file without an extension, call read_file first and decide from its content.\n"
    "3. When every file is moved, reply with one short sentence saying what you did."
)
TASK = "Tidy up this folder. Start with list_files."

# The only folders move_file accepts: the grammar then offers the model just these four,
# and the argument's description next to them says which is which.
Subfolder = Literal["documents", "images", "data", "code"]

# name -> (content, the subfolder it belongs in)
SAMPLE_FILES: dict[str, tuple[bytes, str]] = {
    "meeting-notes.md": (b"# Meeting notes\n\n- ship the beta on Friday\n", "documents"),
    "letter.txt": (b"Dear Ms Novak,\nthank you for your order.\n", "documents"),
    "holiday.jpg": (b"\xff\xd8\xff\xe0" + bytes(60), "images"),
    "budget.csv": (b"item,amount\nrent,1200\nfood,450\n", "data"),
    "settings.json": (b'{"theme": "dark", "autosave": true}\n', "data"),
    "backup.py": (b"import shutil\nshutil.copytree('src', 'backup')\n", "code"),
    "untitled": (b"name,email\nAda,ada@example.com\nLin,lin@example.com\n", "data"),
}


def seed_folder(root: Path) -> None:
    """(Re)create the messy sample folder."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for name, (content, _) in SAMPLE_FILES.items():
        (root / name).write_bytes(content)


def make_move_file(root: Path) -> Tool:
    """A ``move_file`` tool confined to ``root``, as the Workspace tools are."""
    real_root = root.resolve()

    def inside(path: str) -> Path:
        # resolve() follows ".." and symlinks; an absolute path replaces the root entirely.
        target = (real_root / path.strip()).resolve()
        if not target.is_relative_to(real_root):
            raise ToolError(f"refused {path!r}: use a path relative to the folder")
        return target

    @tool
    def move_file(path: str, folder: Subfolder) -> str:
        """Move one file into the subfolder for its type (the subfolder is created).

        Args:
            path: the file to move, for example "letter.txt"
            folder: documents for .txt and .md, images for .png and .jpg, data for .csv
                and .json, code for .py
        """
        source, destination = inside(path), inside(folder)
        if not source.is_file():
            raise ToolError(f"no file {path!r}; use list_files to see the files")
        if destination.exists() and not destination.is_dir():
            raise ToolError(f"{folder!r} is a file, not a folder")
        destination.mkdir(parents=True, exist_ok=True)
        target = destination / source.name
        if target.exists():
            raise ToolError(f"{target.relative_to(real_root)} already exists")
        os.replace(source, target)
        return f"moved {path} to {target.relative_to(real_root)}"

    return move_file


def build_agent(
    model: str = DEFAULT_MODEL,
    *,
    db: str | None = None,
    max_steps: int = 16,
    folder: Path = DEFAULT_FOLDER,
) -> Agent[AgentState]:
    """The tidying agent over ``folder`` (the function `agentkit runs resume` calls)."""
    workspace = Workspace(folder)
    # Only the tools the job needs: a small model picks better among fewer choices.
    tools = [t for t in workspace.tools() if t.name in ("list_files", "read_file")]
    return Agent(
        model.split(","),
        tools=[*tools, make_move_file(folder)],
        system_prompt=SYSTEM_PROMPT,
        name="tidy-folder",
        max_steps=max_steps,
        sampling=Sampling(temperature=0.1, max_tokens=256),
        # On a ladder, a model caught repeating itself goes up a tier at once (resampling
        # a small model rarely breaks its loop); on the top tier it gets one nudge.
        responses=ResponsePlan(sequence=("escalate", "escalate", "nudge", "stop")),
        store=db,
        app=APP,
    )


def tree(root: Path) -> str:
    lines = [f"{root}/"]
    for path in sorted(root.rglob("*")):
        depth = len(path.relative_to(root).parts)
        lines.append("    " * depth + path.name + ("/" if path.is_dir() else ""))
    return "\n".join(lines)


def tidy_score(root: Path) -> tuple[int, list[str]]:
    """How many sample files are in their expected subfolder, and where the others are."""
    placed, misplaced = 0, []
    for name, (_, expected) in SAMPLE_FILES.items():
        if (root / expected / name).is_file():
            placed += 1
        else:
            found = [str(p.relative_to(root)) for p in root.rglob(name)]
            misplaced.append(f"{name} (expected {expected}/, found: {', '.join(found) or '-'})")
    return placed, misplaced


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="catalog name or GGUF path; several, comma-separated, make a ladder",
    )
    parser.add_argument("--db", help="run database (default: the normal agentkit store)")
    parser.add_argument("--max-steps", type=int, default=16)
    parser.add_argument("--verbose", action="store_true", help="more detail per event")
    args = parser.parse_args(argv)

    seed_folder(DEFAULT_FOLDER)
    print("before:\n" + tree(DEFAULT_FOLDER) + "\n")
    agent = build_agent(args.model, db=args.db, max_steps=args.max_steps)
    result = agent.run(TASK, on_event=ConsoleProgress(verbose=args.verbose))
    print("\nafter:\n" + tree(DEFAULT_FOLDER))
    placed, misplaced = tidy_score(DEFAULT_FOLDER)
    print(f"\n{placed} of {len(SAMPLE_FILES)} files are in the right subfolder")
    for line in misplaced:
        print(f"  not tidied: {line}")
    print()
    print_summary(result, agent.store.path)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
