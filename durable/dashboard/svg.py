"""Server-side SVG: a run's flow graph painted by status, its timeline, the overview chart.

Every piece of text is escaped here (markupsafe), so the returned Markup is
safe to place in a page as is; colours come from CSS classes in the
dashboard's stylesheet (no inline styles, so a strict CSP holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 168, 34, 28, 30, 16


def _e(value: Any) -> str:
    return str(escape(str(value)))


def _short(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _ranks(graph: Mapping[str, Any]) -> dict[str, int]:
    """Longest-path layering over the forward edges (compensations excluded)."""
    ids = [n["id"] for n in graph["nodes"] if n["kind"] != "compensation"]
    preds: dict[str, list[str]] = {i: [] for i in ids}
    for edge in graph["edges"]:
        if edge["kind"] != "compensate" and edge["to"] in preds and edge["from"] in preds:
            preds[edge["to"]].append(edge["from"])
    rank: dict[str, int] = {}

    def visit(node: str, seen: frozenset[str]) -> int:
        if node in rank:
            return rank[node]
        if node in seen:  # defensive: graphs are acyclic
            return 0
        r = max((visit(p, seen | {node}) + 1 for p in preds[node]), default=0)
        rank[node] = r
        return r

    for i in ids:
        visit(i, frozenset())
    return rank


def flow_svg(
    graph: Mapping[str, Any],
    node_status: Mapping[str, str],
    current: str | None = None,
    finished: bool = False,
) -> Markup:
    """The workflow's graph; ``node_status`` maps a node id to the status of its last
    attempt. Edges whose both ends ran are marked taken (the branch or jump followed)."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    rank = _ranks(graph)
    rows: dict[int, list[str]] = {}
    order = {n["id"]: i for i, n in enumerate(graph["nodes"])}
    for node_id, r in sorted(rank.items(), key=lambda kv: (kv[1], order[kv[0]])):
        rows.setdefault(r, []).append(node_id)
    width_cols = max((len(v) for v in rows.values()), default=1)
    comps = [n for n in graph["nodes"] if n["kind"] == "compensation"]
    comp_x = PAD + width_cols * (NODE_W + GAP_X) + GAP_X
    pos: dict[str, tuple[float, float]] = {}
    for r, members in rows.items():
        offset = (width_cols - len(members)) * (NODE_W + GAP_X) / 2
        for c, node_id in enumerate(members):
            pos[node_id] = (PAD + offset + c * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y))
    for comp in comps:
        owner = pos.get(comp.get("compensates", ""), (0.0, float(PAD)))
        pos[comp["id"]] = (comp_x, owner[1])
    width = comp_x + (NODE_W + PAD if comps else 0)
    height = PAD * 2 + (max(rows, default=0) + 1) * (NODE_H + GAP_Y)

    ran = {k for k, v in node_status.items() if v}
    ran.add("__start__")
    if finished:
        ran.add("__end__")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow" role="img" '
        f'aria-label="flow of {_e(graph.get("workflow", ""))}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead"/></marker></defs>',
    ]
    for edge in graph["edges"]:
        a, b = pos.get(edge["from"]), pos.get(edge["to"])
        if a is None or b is None:
            continue
        taken = edge["from"] in ran and edge["to"] in ran
        if edge["kind"] == "compensate":
            taken = edge["to"] in ran
            x1, y1 = a[0] + NODE_W, a[1] + NODE_H / 2
            x2, y2 = b[0], b[1] + NODE_H / 2
        else:
            x1, y1 = a[0] + NODE_W / 2, a[1] + NODE_H
            x2, y2 = b[0] + NODE_W / 2, b[1]
        klass = f"edge edge-{_e(edge['kind'])}" + (" taken" if taken else "")
        mid_y = (y1 + y2) / 2
        path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{mid_y:.0f} {x2:.0f},{mid_y:.0f} {x2:.0f},{y2:.0f}"
        parts.append(
            f'<path class="{klass}" d="{path}" marker-end="url(#arrow)" '
            f'data-from="{_e(edge["from"])}" data-to="{_e(edge["to"])}"/>'
        )
        if edge.get("label"):
            parts.append(
                f'<text class="edge-label" x="{(x1 + x2) / 2 + 4:.0f}" y="{mid_y:.0f}">'
                f"{_e(_short(str(edge['label']), 18))}</text>"
            )
    for node_id, (x, y) in pos.items():
        node = nodes[node_id]
        status = node_status.get(node_id) or ("completed" if node_id in ran else "pending")
        if node_id == current and not finished:
            status = "current"
        klass = f"node kind-{_e(node['kind'])} st-{_e(status)}"
        shape = (
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="17"/>'
            if node["kind"] in ("start", "end")
            else f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="4"/>'
        )
        if node["kind"] == "branch":
            cx, cy = x + NODE_W / 2, y + NODE_H / 2
            shape = (
                f'<polygon points="{x:.0f},{cy:.0f} {cx:.0f},{y - 4:.0f} '
                f'{x + NODE_W:.0f},{cy:.0f} {cx:.0f},{y + NODE_H + 4:.0f}"/>'
            )
        label = _short(str(node.get("label", node_id)))
        parts.append(
            f'<g class="{klass}" data-node="{_e(node_id)}" data-status="{_e(status)}">'
            f"<title>{_e(node_id)}: {_e(status)}</title>{shape}"
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + NODE_H / 2 + 4:.0f}" '
            f'text-anchor="middle">{_e(label)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def timeline_svg(
    rows: Sequence[Mapping[str, Any]], start: datetime, end: datetime, width: int = 900
) -> Markup:
    """Bars over time. Each row: label, kind (attempt|wait|retry), status, start, end."""
    label_w, row_h, top = 220, 22, 24
    span = max((end - start).total_seconds(), 0.001)
    plot = width - label_w - PAD
    height = top + len(rows) * row_h + PAD

    def x_of(when: datetime) -> float:
        return label_w + max(0.0, min(1.0, (when - start).total_seconds() / span)) * plot

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" '
        f'aria-label="timeline" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f'<text class="axis" x="{label_w}" y="14">{_e(start.strftime("%H:%M:%S"))}</text>',
        f'<text class="axis" x="{width - PAD}" y="14" text-anchor="end">'
        f"{_e(end.strftime('%H:%M:%S'))} (+{_e(_span_text(span))})</text>",
    ]
    for i, row in enumerate(rows):
        y = top + i * row_h
        x1 = x_of(row["start"])
        x2 = max(x1 + 2, x_of(row["end"]))
        klass = f"bar kind-{_e(row['kind'])} st-{_e(row['status'])}"
        parts.append(
            f'<text class="bar-label" x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f"{_e(_short(str(row['label']), 30))}</text>"
            f'<rect class="{klass}" x="{x1:.1f}" y="{y + 4}" width="{x2 - x1:.1f}" height="{row_h - 8}">'
            f"<title>{_e(row['label'])}: {_e(row['status'])}, {_e(_span_text((row['end'] - row['start']).total_seconds()))}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _span_text(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def chart_svg(buckets: Iterable[Mapping[str, Any]], width: int = 720, height: int = 140) -> Markup:
    """Stacked bars per bucket: completed and failed, with a line of runs started."""
    items = list(buckets)
    n = max(len(items), 1)
    peak = max([1] + [max(b["completed"] + b["failed"], b["started"]) for b in items])
    bar_w = (width - 2 * PAD) / n
    plot_h = height - 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-label="throughput and failures" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">',
        f'<text class="axis" x="{PAD}" y="12">peak {peak}</text>',
    ]
    points = []
    for i, b in enumerate(items):
        x = PAD + i * bar_w
        h_ok = plot_h * b["completed"] / peak
        h_bad = plot_h * b["failed"] / peak
        base = height - 14
        when = b["start"].strftime("%m-%d %H:%M") if b.get("start") else ""
        tip = f"{when}: {b['started']} started, {b['completed']} completed, {b['failed']} failed"
        parts.append(
            f"<g><title>{_e(tip)}</title>"
            f'<rect class="bar-ok" x="{x + 1:.1f}" y="{base - h_ok:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h_ok:.1f}"/>'
            f'<rect class="bar-failed" x="{x + 1:.1f}" y="{base - h_ok - h_bad:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h_bad:.1f}"/></g>'
        )
        points.append(f"{x + bar_w / 2:.1f},{base - plot_h * b['started'] / peak:.1f}")
    if points:
        parts.append(f'<polyline class="line-started" points="{" ".join(points)}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
