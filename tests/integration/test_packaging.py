"""tools/ and tui/ install as agentkit.tools and agentkit.tui, from a wheel and editable."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import agentkit, agentkit.tools, agentkit.tui, agentkit.testing;"
    "print(agentkit.tools.__file__); print(agentkit.tui.__file__)"
)


def test_wheel_carries_the_mapped_subpackages_and_installs(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("agentkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "agentkit/__init__.py",
        "agentkit/py.typed",
        "agentkit/tools/__init__.py",
        "agentkit/tools/files.py",
        "agentkit/tui/__init__.py",
        "agentkit/tui/monitor.tcss",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("tools/", "tui/")) for n in names)  # no bare top-levels
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # PYTHONPATH wins over the editable install, so this imports the installed copy
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target)},
    )
    for line in out.stdout.split():
        assert Path(line).is_relative_to(target), out.stdout


def test_editable_install_maps_the_source_folders(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    tools_file, tui_file = out.stdout.split()
    assert Path(tools_file) == ROOT / "tools" / "__init__.py"
    assert Path(tui_file) == ROOT / "tui" / "__init__.py"
