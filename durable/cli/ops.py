"""Operations commands: cleanup, doctor, graph, events."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import DurableError
from ..graph import workflow_graph
from ..retention import FINISHED, CleanupResult, cleanup, count_candidates, parse_age
from .common import app_of, json_option
from .output import emit_json, is_tty

# ---- cleanup ------------------------------------------------------------------------


@click.command("cleanup")
@click.option("--older-than", required=True, help="finished longer ago than this (30d, 12h, 2w)")
@click.option(
    "--status",
    "-s",
    "statuses",
    multiple=True,
    type=click.Choice(FINISHED),
    help="only runs that ended so (repeatable; default: every finished status)",
)
@click.option("--dry-run", is_flag=True, help="count what would go; delete nothing")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--yes", is_flag=True, help="allow an age under an hour (1m is one minute)")
@json_option
@click.pass_context
def cleanup_cmd(
    ctx: click.Context,
    older_than: str,
    statuses: tuple[str, ...],
    dry_run: bool,
    batch_size: int,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete finished runs (with their steps, logs, waits, inputs, events and
    children) older than --older-than, in batches. Trees with an active run stay."""
    try:
        seconds = parse_age(older_than, "--older-than")
    except DurableError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    if seconds < 3600 and not dry_run and not yes:
        # "1m" is one minute here, and reads as a month: make a short age deliberate
        raise click.BadParameter(
            f"{older_than!r} is under an hour (m means minutes, not months; "
            "months are 30d); add --yes to delete runs that recent",
            param_hint="--older-than",
        )
    app = app_of(ctx)
    app.ready()
    cutoff = app.clock.now_ms() - int(seconds * 1000)
    cutoffs = {s: cutoff for s in (statuses or FINISHED)}
    total = count_candidates(app.engine, cutoffs)
    show_bar = not as_json and sys.stderr.isatty()
    if show_bar:
        with click.progressbar(
            length=total, label="dry run" if dry_run else "deleting", file=sys.stderr
        ) as bar:
            result = cleanup(
                app.engine, cutoffs, batch_size=batch_size, dry_run=dry_run, progress=bar.update
            )
    else:
        result = cleanup(app.engine, cutoffs, batch_size=batch_size, dry_run=dry_run)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(_summary(result))


def _summary(result: CleanupResult) -> str:
    verb = "would delete" if result.dry_run else "deleted"
    text = f"{verb} {result.executions} runs and {result.steps} step executions"
    if result.by_status:
        text += " (" + ", ".join(f"{s}: {n}" for s, n in result.by_status.items()) + ")"
    if result.skipped_active:
        text += f"; kept {result.skipped_active} with a run still active"
    return text


# ---- doctor --------------------------------------------------------------------------


@click.command()
@click.option("--fix", is_flag=True, help="repair what is safe to repair")
@json_option
@click.pass_context
def doctor(ctx: click.Context, fix: bool, as_json: bool) -> None:
    """Check the database, schema, claims, stuck runs, schedules and clocks (exit 1 on a failure)."""
    from ..doctor import run_checks

    app = app_of(ctx)
    checks = run_checks(app, fix=fix)
    ok = all(c.status != "fail" or c.fixed for c in checks)
    if as_json:
        emit_json({"ok": ok, "checks": [c.to_dict() for c in checks]})
    else:
        marks = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red")}
        color = is_tty() or None
        for c in checks:
            mark, fg = marks[c.status]
            fixed = f" (fixed {c.fixed})" if c.fixed else ""
            click.echo(
                click.style(f"[{mark:>4}]", fg=fg) if color else f"[{mark:>4}]",
                color=color,
                nl=False,
            )
            click.echo(f" {c.name}: {c.message}{fixed}")
            for item in c.items[:10]:
                if c.status != "ok":
                    click.echo("         " + ", ".join(f"{k}={v}" for k, v in item.items()))
    if not ok:
        ctx.exit(1)


# ---- graph ---------------------------------------------------------------------------


@click.command()
@click.argument("workflow")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot", "json"]),
    default="text",
    show_default=True,
)
@click.pass_context
def graph(ctx: click.Context, workflow: str, fmt: str) -> None:
    """The static shape of WORKFLOW: a text tree, Mermaid, DOT or JSON."""
    app = app_of(ctx)
    g = workflow_graph(app.get_workflow(workflow))
    if fmt == "json":
        emit_json(g)
    elif fmt == "mermaid":
        click.echo(_mermaid(g))
    elif fmt == "dot":
        click.echo(_dot(g))
    else:
        click.echo(_text(g))


def _node_label(node: dict[str, Any]) -> str:
    kind = node["kind"]
    label = str(node["label"])
    if kind == "step":
        extras = []
        if node.get("retry"):
            extras.append(f"retry x{node['retry']['max_attempts']}")
        if node.get("timeout"):
            extras.append(f"timeout {node['timeout']:g}s")
        if node.get("queue"):
            extras.append(f"queue {node['queue']}")
        if node.get("calls_children"):
            extras.append("starts children")
        return label + (f" ({', '.join(extras)})" if extras else "")
    return f"{label} [{kind}]"


def _text(g: dict[str, Any]) -> str:
    nodes = {n["id"]: n for n in g["nodes"]}
    out = [f"{g['workflow']}" + (f" (timeout {g['timeout']:g}s)" if g.get("timeout") else "")]
    for node in g["nodes"]:
        if node["kind"] in ("start", "end"):
            continue
        depth = len(node.get("scope", []))
        prefix = "  " * (depth + 1)
        if node["kind"] == "compensation":
            out.append(f"{prefix}  ↺ {node['label']} (compensates {node['compensates']})")
            continue
        out.append(f"{prefix}- {_node_label(node)}")
        for edge in g["edges"]:
            if edge["from"] != node["id"] or edge["kind"] not in ("case", "default", "jump"):
                continue
            target = nodes.get(edge["to"], {"label": edge["to"]})["label"]
            what = "may jump to" if edge["kind"] == "jump" else f"when {edge.get('label')} ->"
            out.append(f"{prefix}    {what} {target}")
    return "\n".join(out)


def _ident(node_id: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in node_id)


def _mermaid(g: dict[str, Any]) -> str:
    lines = ["flowchart TD"]
    for n in g["nodes"]:
        label = str(n["label"]).replace('"', "'")
        shape = {
            "start": f'(["{label}"])',
            "end": f'(["{label}"])',
            "branch": f'{{"{label}"}}',
            "parallel": f'[["{label}"]]',
            "foreach": f'[["{label}"]]',
            "compensation": f'>"{label}"]',
        }.get(n["kind"], f'["{label}"]')
        lines.append(f"    {_ident(n['id'])}{shape}")
    for e in g["edges"]:
        arrow = "-.->" if e["kind"] in ("compensate", "jump") else "-->"
        label = e.get("label") or ("" if e["kind"] in ("next", "fork", "join") else e["kind"])
        text = f"|{str(label).replace('|', '/')}|" if label else ""
        lines.append(f"    {_ident(e['from'])} {arrow}{text} {_ident(e['to'])}")
    return "\n".join(lines)


def _dot(g: dict[str, Any]) -> str:
    lines = [f"digraph {json.dumps(g['workflow'])} {{", "  rankdir=TB;"]
    shapes = {
        "start": "oval",
        "end": "oval",
        "branch": "diamond",
        "parallel": "box3d",
        "foreach": "box3d",
    }
    for n in g["nodes"]:
        shape = shapes.get(n["kind"], "box")
        style = ', style="dashed"' if n["kind"] == "compensation" else ""
        lines.append(
            f"  {json.dumps(n['id'])} [label={json.dumps(n['label'])}, shape={shape}{style}];"
        )
    for e in g["edges"]:
        attrs = []
        if e.get("label"):
            attrs.append(f"label={json.dumps(str(e['label']))}")
        if e["kind"] in ("compensate", "jump"):
            attrs.append('style="dashed"')
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {json.dumps(e['from'])} -> {json.dumps(e['to'])}{suffix};")
    lines.append("}")
    return "\n".join(lines)


COMMANDS = [cleanup_cmd, doctor, graph]
