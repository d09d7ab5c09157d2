"""Every ```python block in the README and docs/ runs as written (in a temporary folder).

A block whose info string says ``python no-run`` is illustration only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for i, match in enumerate(BLOCK.finditer(doc.read_text())):
            out.append((f"{doc.relative_to(ROOT)}#{i + 1}", match.group(1)))
    return out


@pytest.mark.parametrize(("where", "code"), _blocks(), ids=[w for w, _ in _blocks()])
def test_example_runs(where, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"doc_example_{abs(hash(where))}"}
    exec(compile(code, where, "exec"), namespace)
    for name, value in list(namespace.items()):  # call test functions the example defines
        if name.startswith("test_") and callable(value):
            value()
    app = namespace.get("app")
    close = getattr(app, "close", None)
    if callable(close):
        close()
