"""CONTRIBUTING.md's map of the code matches the tree: every module listed, every entry real."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = re.compile(r"^(?P<indent> *)(?P<names>[\w.]+(?:\.py|/)(?: [\w.]+/)*)(?: |$)")


def map_entries(text: str) -> set[str]:
    """Paths in the Layout block: ``dir/`` lines open a folder for the lines indented
    two more spaces below them; descriptions and their continuation lines are skipped."""
    section = text.split("## Layout", 1)[1]
    block = section.split("```", 2)[1]
    entries: set[str] = set()
    folders: list[str] = []
    for line in block.splitlines():
        match = ENTRY.match(line)
        if not match or len(match["indent"]) % 2 or len(match["indent"]) // 2 > len(folders):
            continue
        folders = folders[: len(match["indent"]) // 2]
        for name in match["names"].split():
            path = "/".join([*folders, name])
            entries.add(path)
        if match["names"].endswith("/") and " " not in match["names"]:
            folders.append(match["names"].rstrip("/"))
    return entries


def test_map_parser_reads_folders_and_skips_descriptions() -> None:
    text = "## Layout\n```\npkg/\n  a.py   one\n         two.py words\n  sub/\n    b.py x\n  c.py\n```\n"
    assert map_entries(text) == {"pkg/", "pkg/a.py", "pkg/sub/", "pkg/sub/b.py", "pkg/c.py"}


def test_every_module_is_listed_and_every_entry_exists() -> None:
    entries = map_entries((ROOT / "CONTRIBUTING.md").read_text())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "durable").rglob("*.py")}
    assert sorted(modules - entries) == [], "modules missing from CONTRIBUTING.md's map"
    missing = sorted(e for e in entries if not (ROOT / e.rstrip("/")).exists())
    assert missing == [], "CONTRIBUTING.md's map lists paths that do not exist"
