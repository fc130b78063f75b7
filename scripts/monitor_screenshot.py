"""Draw docs/monitor.svg (and .png with rsvg-convert) from a real run in a run store.

    .venv/bin/python scripts/monitor_screenshot.py [--db PATH] [--run RUN_ID]

Without --run it takes the newest run with the most steps among the last ten, which
after `make demo` is the demo's run on the real models.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from agentkit.store import RunStore, default_db_path
from agentkit.tui import MonitorApp
from agentkit.tui.widgets import RunsTable

DOCS = Path(__file__).resolve().parent.parent / "docs"


async def shoot(db: Path, run_id: str) -> None:
    app = MonitorApp(db)
    async with app.run_test(size=(140, 38)) as pilot:
        await pilot.pause(0.5)
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index(run_id))
        await pilot.press("enter")
        await pilot.pause(1.0)
        app.save_screenshot("monitor.svg", str(DOCS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=default_db_path())
    parser.add_argument("--run")
    args = parser.parse_args()
    store = RunStore(args.db, create=False)
    run_id = args.run or max(store.list_runs(limit=10), key=lambda r: r.steps).id
    print(f"run {run_id} from {args.db}")
    asyncio.run(shoot(args.db, run_id))
    converter = shutil.which("rsvg-convert")
    if converter is None:
        print("no rsvg-convert (apt-get install librsvg2-bin): wrote only the SVG", file=sys.stderr)
        return 0
    subprocess.run(
        [converter, "-o", str(DOCS / "monitor.png"), str(DOCS / "monitor.svg")], check=True
    )
    print(f"wrote {DOCS / 'monitor.svg'} and {DOCS / 'monitor.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
