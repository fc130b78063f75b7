"""The ``agentkit`` command line and the terminal output of runs.

``main`` is the console script; ``ConsoleProgress`` prints a run's events live and
``print_summary`` its outcome.
"""

from ._console import ConsoleProgress, print_summary
from ._main import build_parser, main

__all__ = ["ConsoleProgress", "build_parser", "main", "print_summary"]
