"""Small text pictures for the run view: the graph with its current node, tier per step.

They are Rich renderables, so they fit whatever width the panel has; the styles come
from the widget that shows them (and so from ``monitor.tcss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.text import Text

from .data import END_NODE

_END_LABEL = "END"


@dataclass(frozen=True)
class GraphStyles:
    """How the graph picture marks nodes."""

    current: Style
    entry: Style
    kind: Style
    edge: Style


def render_graph(graph: dict[str, Any], current: str | None, styles: GraphStyles) -> Text:
    """Every node with its kind and successors, one a line; the current node marked ●.

    ``graph`` is ``runs.graph_json``: ``{"nodes": {name: kind}, "edges": [[a, b]],
    "entry": name}``.
    """
    nodes: dict[str, str] = dict(graph.get("nodes") or {})
    if not nodes:
        return Text("(no graph recorded)", style=styles.kind)
    edges: list[list[str]] = [list(e) for e in graph.get("edges") or [] if len(e) == 2]
    entry = graph.get("entry")
    successors: dict[str, list[str]] = {}
    for source, target in edges:
        successors.setdefault(source, []).append(target)
    names = sorted(nodes, key=lambda n: (n != entry, list(nodes).index(n)))
    reaches_end = any(target == END_NODE for _, target in edges)
    width = max(len(n) for n in [*names, _END_LABEL])
    kind_width = max(len(k) for k in nodes.values()) + 2
    text = Text()
    for name in names:
        is_current = name == current
        text.append("● " if is_current else "  ", styles.current if is_current else "")
        text.append(
            name.ljust(width),
            styles.current if is_current else styles.entry if name == entry else "",
        )
        text.append(f" {'(' + nodes[name] + ')':<{kind_width}}", styles.kind)
        targets = [_END_LABEL if t == END_NODE else t for t in successors.get(name, [])]
        if targets:
            text.append(" → ", styles.edge)
            text.append(", ".join(targets))
        if name == entry:
            text.append("  ← start", styles.kind)
        text.append("\n")
    if reaches_end or current == END_NODE:
        done = current == END_NODE
        text.append("● " if done else "  ", styles.current if done else "")
        text.append(_END_LABEL, styles.current if done else styles.kind)
    text.rstrip()
    return text


@dataclass(frozen=True)
class TierChart:
    """Tier per model step as a bar chart, one column per step, newest on the right.

    Escalated steps are drawn in ``escalated``; when there are more steps than columns
    only the latest are shown.
    """

    series: Sequence[tuple[int, bool]]
    bar: Style
    escalated: Style
    axis: Style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render(options.max_width)

    def render(self, width: int) -> Text:
        """The chart as text, at most ``width`` columns wide."""
        if not self.series:
            return Text("no model steps yet", style=self.axis)
        top = max(max(t for t, _ in self.series), 1)
        label_width = len(str(top)) + 3
        room = max(1, width - label_width)
        # Few steps get wide bars with gaps, many get one column each.
        column = max(1, min(3, room // len(self.series)))
        bar = "█" * max(1, column - 1) + (" " if column > 1 else "")
        shown = list(self.series)[-(room // column) :]
        text = Text()
        for row in range(top, -1, -1):
            text.append(f"{row:>{label_width - 3}} │ ", self.axis)
            for tier, escalated in shown:
                if tier >= row:
                    text.append(bar, self.escalated if escalated else self.bar)
                else:
                    text.append(" " * len(bar))
            text.append("\n")
        skipped = len(self.series) - len(shown)
        note = f"{len(self.series)} model steps" + (f", last {len(shown)} shown" if skipped else "")
        text.append(" " * label_width + note, self.axis)
        return text
