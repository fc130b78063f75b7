"""The monitor's widgets: the runs and steps tables and the run view's panels.

Widgets turn the plain data of ``data.py`` into text. Colours are component classes,
styled in ``monitor.tcss``; every piece of text that came from a run (task, content,
tool results) is a ``Text``, never markup, so brackets in it show as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from .charts import GraphStyles, TierChart, render_graph
from .data import (
    END_NODE,
    STATUS_ICONS,
    Alert,
    RunSummary,
    StepView,
    Timeline,
    format_count,
    format_elapsed,
    one_line,
    status_label,
)

STATUS_CLASSES = {f"status--{s}" for s in STATUS_ICONS}

Row = tuple[str, tuple[Text, ...]]


def _right(value: object, style: Style | str = "") -> Text:
    return Text(str(value), style=style, justify="right")


def style_of(widget: Widget, name: str) -> Style:
    """The Rich style of a widget's component class (colours live in ``monitor.tcss``)."""
    return widget.get_component_rich_style(name, partial=True)


def sync_rows(table: DataTable[Text], rows: Sequence[Row], cursor_key: str | None) -> None:
    """Make ``table`` show ``rows`` touching as little as possible.

    When the old rows are still in the same order (the usual case for a live run: steps
    only get appended) changed cells are updated and new rows appended; otherwise the
    table is rebuilt. The cursor goes back to ``cursor_key`` if that row is still there.
    """
    new_keys = [key for key, _ in rows]
    wanted = set(new_keys)
    old_keys = [str(k.value) for k in table.rows]
    kept = [k for k in old_keys if k in wanted]
    if kept != new_keys[: len(kept)]:
        table.clear()
        old_keys, kept = [], []
    for key in set(old_keys) - wanted:
        table.remove_row(key)
    columns = [str(c.value) for c in table.columns]
    present = set(kept)
    for key, cells in rows:
        if key not in present:
            table.add_row(*cells, key=key)
            continue
        for column, cell in zip(columns, cells, strict=True):
            if table.get_cell(key, column) != cell:
                table.update_cell(key, column, cell)
    if cursor_key is not None and cursor_key in wanted:
        table.move_cursor(row=table.get_row_index(cursor_key), animate=False)


class _FittedTable(DataTable[Text]):
    """A row-cursor table whose last column is cut to fit, so it never scrolls sideways.

    Subclasses name their columns in ``COLUMNS`` (key, label) and call ``set_rows``.
    """

    COLUMNS: ClassVar[list[tuple[str, str]]] = []
    BINDINGS: ClassVar[list[BindingType]] = [
        # Nothing scrolls sideways here, so Home and End go to the first and last row.
        Binding("home", "scroll_top", "First row", show=False, tooltip="first row"),
        Binding("end", "scroll_bottom", "Last row", show=False, tooltip="last row"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._rows: list[Row] = []
        self._room: int | None = None
        self._labels: list[str] = [label for _, label in self.COLUMNS]

    def set_labels(self, labels: Sequence[str]) -> None:
        """New column headers (the sort mark); takes effect with the next ``set_rows``."""
        if list(labels) != self._labels:
            self._labels = list(labels)
            self._room = None

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Show ``rows``, keeping the cursor on the same row."""
        cursor_key = self.cursor_key()
        self._rows = list(rows)
        room = self._last_column_room()
        if room != self._room or not self.columns:
            # Column widths only ever grow in a DataTable: start again to let one shrink.
            self._room = room
            self.clear(columns=True)
            for (key, _), label in zip(self.COLUMNS, self._labels, strict=True):
                self.add_column(Text(label), key=key)
        sync_rows(self, [(key, self._fit(cells, room)) for key, cells in rows], cursor_key)

    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        if not self.row_count or not 0 <= self.cursor_row < self.row_count:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def on_resize(self) -> None:
        if self._rows:
            self.set_rows(self._rows)

    def _last_column_room(self) -> int:
        if self.size.width == 0:
            return 60
        pad = 2 * self.cell_padding
        widths = [len(label) for label in self._labels[:-1]]
        for _, cells in self._rows:
            for i, cell in enumerate(cells[:-1]):
                widths[i] = max(widths[i], cell.cell_len)
        header = 1
        scrollbar = 2 if len(self._rows) + header > self.size.height else 0
        return max(12, self.size.width - sum(w + pad for w in widths) - pad - scrollbar)

    @staticmethod
    def _fit(cells: tuple[Text, ...], room: int) -> tuple[Text, ...]:
        last = cells[-1]
        if last.cell_len <= room:
            return cells
        last = last.copy()
        last.truncate(room, overflow="ellipsis")
        return (*cells[:-1], last)


class RunsTable(_FittedTable):
    """Every run: status, elapsed, steps, tokens, tier mix, escalations and alerts."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open run", tooltip="open the highlighted run"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = (
        DataTable.COMPONENT_CLASSES | STATUS_CLASSES | {"runs--muted", "runs--alert"}
    )

    COLUMNS: ClassVar[list[tuple[str, str]]] = [
        ("run", "run"),
        ("name", "name"),
        ("status", "status"),
        ("started", "started"),
        ("elapsed", "elapsed"),
        ("steps", "steps"),
        ("tokens", "tokens"),
        ("tiers", "tiers"),
        ("escalations", "esc"),
        ("alerts", "alerts"),
        ("task", "task"),
    ]

    def show(self, runs: Sequence[RunSummary], now: float, sort: str, reverse: bool) -> None:
        """Show ``runs`` (already filtered and sorted) with ``sort`` marked in the header."""
        mark = " ▼" if reverse else " ▲"
        self.set_labels([label + (mark if key == sort else "") for key, label in self.COLUMNS])
        self.set_rows([(r.id, self._cells(r, now)) for r in runs])

    def _cells(self, run: RunSummary, now: float) -> tuple[Text, ...]:
        muted = style_of(self, "runs--muted")
        alert = style_of(self, "runs--alert")
        return (
            Text(run.id[:8], style=muted),
            Text(one_line(run.name, 18)),
            Text(status_label(run.status), style=style_of(self, f"status--{run.status}")),
            _right(format_elapsed(now - run.created_at) + " ago", muted),
            _right(format_elapsed(now - run.created_at if run.live else run.elapsed)),
            _right(run.steps),
            _right(format_count(run.tokens)),
            Text(run.tiers or "-"),
            _right(run.escalations, alert if run.escalations else muted),
            _right(run.alerts, alert if run.alerts else muted),
            Text(one_line(run.task, 200), style=muted),
        )


class StepsTable(_FittedTable):
    """The step timeline of one run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter", "select_cursor", "Step details", tooltip="every detail of the highlighted step"
        ),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "steps--strike",
        "steps--escalated",
        "steps--error",
        "steps--pending",
        "steps--muted",
    }
    COLUMNS: ClassVar[list[tuple[str, str]]] = [
        ("idx", "#"),
        ("node", "node"),
        ("tier", "tier"),
        ("prompt", "reused/eval"),
        ("gen", "gen"),
        ("secs", "secs"),
        ("alert", "alert"),
        ("action", "call / result"),
    ]

    def show(self, steps: Sequence[StepView], follow: bool) -> None:
        """Show the timeline; with ``follow`` the cursor jumps to the newest step."""
        grew = len(steps) != self.row_count
        self.set_rows(
            [(f"pending-{s.idx}" if s.pending else str(s.idx), self._cells(s)) for s in steps]
        )
        # Only a new step moves the cursor, not every write to the store.
        if follow and steps and grew:
            self.move_cursor(row=len(steps) - 1, animate=False)

    def _cells(self, s: StepView) -> tuple[Text, ...]:
        muted = style_of(self, "steps--muted")
        row_style = (
            style_of(self, "steps--pending")
            if s.pending
            else style_of(self, "steps--error")
            if s.is_error
            else Style()
        )
        tier = _right("-" if s.tier is None else s.tier)
        if s.escalated:
            tier = _right(f"▲{s.tier}", style_of(self, "steps--escalated"))
        is_model = s.kind == "model" and not s.pending
        alert = Text()
        if s.strikes:
            alert.append("⚠ " + ", ".join(s.strikes), style_of(self, "steps--strike"))
        prompt = Text(justify="right")
        if is_model:
            prompt.append(str(s.reused), muted)
            prompt.append(f"/{s.evaluated}")
        return (
            _right(s.idx, muted),
            Text(s.node, style=row_style),
            tier,
            prompt,
            _right(s.completion if is_model else ""),
            _right("" if s.pending else f"{s.seconds:.2f}"),
            alert,
            Text(s.action, style=row_style),
        )


class RunSummaryPanel(Static):
    """The run's status line, totals, task and outcome."""

    COMPONENT_CLASSES: ClassVar[set[str]] = STATUS_CLASSES | {"summary--label", "summary--warning"}

    def show(self, timeline: Timeline) -> None:
        """Show the run's status, totals, task, outcome and any controls still queued."""
        run = timeline.run
        label = style_of(self, "summary--label")
        text = Text()
        text.append(status_label(run.status), style_of(self, f"status--{run.status}"))
        text.append(f"  {run.name}", "bold")
        text.append(f"  {run.id}", label)
        node = "END" if run.current_node == END_NODE else run.current_node or "-"
        text.append("  at ", label)
        text.append(node, "bold")
        text.append("\n")
        for i, (name, value) in enumerate(
            [
                ("elapsed", format_elapsed(run.elapsed)),
                ("steps", str(run.steps)),
                (
                    "tokens",
                    f"{format_count(run.tokens)} ({format_count(run.cached_tokens)} reused)",
                ),
                ("tiers", run.tiers or "-"),
                ("escalations", str(run.escalations)),
                ("alerts", str(run.alerts)),
            ]
        ):
            text.append(("  " if i else "") + f"{name} ", label)
            text.append(value)
        text.append("\ntask ", label)
        text.append(one_line(run.task, 300))
        if run.answer:
            text.append("\nanswer ", label)
            text.append(one_line(run.answer, 300))
        if run.error:
            text.append("\nerror ", label)
            text.append(one_line(run.error, 300), style_of(self, "status--failed"))
        text.append("\n")
        if run.live:
            text.append("controls ", label)
            text.append("p pause · r resume · a abort · t force tier")
            if timeline.pending_controls:
                text.append(
                    "   queued: " + ", ".join(timeline.pending_controls),
                    style_of(self, "summary--warning"),
                )
        else:
            text.append("finished: controls are off", label)
        if timeline.warning:
            text.append("\n" + timeline.warning, style_of(self, "summary--warning"))
        self.update(text)


class GraphPanel(Static):
    """The run's graph with the current node marked."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "graph--current",
        "graph--entry",
        "graph--kind",
        "graph--edge",
    }

    def show(self, graph: dict[str, Any], current: str | None) -> None:
        """Draw ``graph`` (``runs.graph_json``) with node ``current`` marked."""
        styles = GraphStyles(
            current=style_of(self, "graph--current"),
            entry=style_of(self, "graph--entry"),
            kind=style_of(self, "graph--kind"),
            edge=style_of(self, "graph--edge"),
        )
        self.update(render_graph(graph, current, styles))


class TierChartPanel(Static):
    """Tier per model step."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"chart--bar", "chart--escalated", "chart--axis"}

    def show(self, series: Sequence[tuple[int, bool]]) -> None:
        """Draw the (tier, escalated) series, newest on the right."""
        self.update(
            TierChart(
                series,
                bar=style_of(self, "chart--bar"),
                escalated=style_of(self, "chart--escalated"),
                axis=style_of(self, "chart--axis"),
            )
        )


class AlertsPanel(Static):
    """Escalations, detector strikes and controls with their reasons, newest first."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "alerts--strike",
        "alerts--escalation",
        "alerts--other",
        "alerts--muted",
    }
    _ICONS: ClassVar[dict[str, str]] = {
        "escalation": "▲",
        "strike": "⚠",
        "filter": "⚑",
        "answer now": "↩",
        "failure": "✗",
    }

    def show(self, alerts: Sequence[Alert]) -> None:
        """Show every alert: a title line, then its reason indented below."""
        if not alerts:
            self.update(
                Text("no escalations or detector strikes", style=style_of(self, "alerts--muted"))
            )
            return
        parts: list[RenderableType] = []
        for alert in reversed(alerts):
            # A filter's verdict is styled as a detector strike: both are the run's alarms.
            kind = "strike" if alert.kind == "filter" else alert.kind
            kind = kind if kind in ("strike", "escalation") else "other"
            line = Text()
            step = f"{alert.step:>3}" if alert.step is not None else "  -"
            line.append(step + " ", style_of(self, "alerts--muted"))
            line.append(
                f"{self._ICONS.get(alert.kind, '·')} {alert.kind} ",
                style_of(self, f"alerts--{kind}"),
            )
            line.append(alert.title)
            parts.append(line)
            if alert.detail:
                parts.append(Padding(Text(alert.detail), (0, 0, 0, 6)))
        self.update(Group(*parts))


_ALARMING = ("detector_strike", "filter_verdict", "tier_chosen")


def step_detail(view: StepView, label: Style, warn: Style) -> RenderableType:
    """Everything about one step: numbers, full reply, tool calls, events."""
    head = Text()
    head.append(f"step {view.idx}", "bold")
    head.append(f"  node {view.node} ({view.kind})")
    if view.tier is not None:
        head.append(f"  tier {view.tier} ({view.model})")
    if view.escalated:
        head.append("  ▲ escalated", warn)
    if view.pending:
        head.append("  running…", warn)
    elif view.kind == "model":
        head.append(
            f"\nprompt {view.reused + view.evaluated} tokens ({view.reused} reused, "
            f"{view.evaluated} evaluated) · generated {view.completion} · "
            f"{view.seconds:.2f} s",
            label,
        )
        speed = view.tokens_per_second
        if speed is not None:
            head.append(f" · {speed:.1f} tok/s", label)
    elif view.row is not None:
        head.append(f"\n{view.seconds:.2f} s", label)
    parts: list[RenderableType] = [head]
    row = view.row
    if row is not None and (row.content or row.kind == "model"):
        parts += [_section("Reply", label), Text(row.content or "(empty)")]
    if row is not None and row.tool_calls:
        parts.append(_section("Tool calls", label))
        for call in row.tool_calls:
            entry = Text()
            entry.append(str(call.get("name")), "bold")
            entry.append(f"  {call.get('id', '')}", label)
            entry.append("\narguments ", label)
            entry.append(json.dumps(call.get("arguments", {}), ensure_ascii=False))
            if "result" in call:
                entry.append(
                    "\nresult" + (" (error)" if call.get("is_error") else "") + " ",
                    warn if call.get("is_error") else label,
                )
                entry.append(str(call.get("result")))
            parts.append(entry)
    if view.events:
        parts.append(_section("Events", label))
        for event in view.events:
            data = event.model_dump(
                mode="json",
                exclude={"run_id", "step", "ts", "version", "type", "content", "tool_calls"},
            )
            line = Text()
            line.append(
                f"{event.type:<22}",
                warn if event.type in _ALARMING else label,
            )
            line.append(", ".join(f"{k}={v}" for k, v in data.items()))
            parts.append(line)
    return Group(*parts)


def _section(title: str, style: Style) -> Text:
    return Text(f"\n── {title} " + "─" * 40, style=style)


__all__ = [
    "AlertsPanel",
    "GraphPanel",
    "RunSummaryPanel",
    "RunsTable",
    "StepsTable",
    "TierChartPanel",
    "step_detail",
    "sync_rows",
]
