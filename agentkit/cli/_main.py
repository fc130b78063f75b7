"""The ``agentkit`` command line.

Each command group lives in its own module of this package and registers itself here.
Every AgentkitError ends the process with a one-line message and exit status 2,
never a traceback; ``AGENTKIT_DEBUG=1`` shows the traceback for bug reports.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .._errors import AgentkitError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from . import _batch, _models, _runs

    parser = argparse.ArgumentParser(
        prog="agentkit",
        description="Run and watch tool-calling agents on small local models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _models.register(sub)
    _runs.register(sub)
    _batch.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 1
    try:
        return handler(args)
    except AgentkitError as exc:
        if os.environ.get("AGENTKIT_DEBUG"):
            raise
        print(f"agentkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("agentkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
