"""The README's FastAPI lifespan recipe, served by a real uvicorn process."""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.request
from pathlib import Path

from tests.support.procs import ROOT, spawn, wait_until


def _recipe() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    [recipe] = [b for b in blocks if "lifespan=lifespan" in b]
    return recipe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(method: str, url: str) -> dict[str, object]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, object] = json.loads(response.read())
        return data


def test_the_fastapi_lifespan_recipe_runs_workflows_and_shuts_down_cleanly(
    tmp_path: Path,
) -> None:
    (tmp_path / "service.py").write_text(_recipe())
    port = _free_port()
    log = tmp_path / "uvicorn.log"
    proc = spawn(
        ["-m", "uvicorn", "service:api", "--port", str(port), "--app-dir", str(tmp_path)],
        log=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                assert proc.poll() is None, log.read_text()
                return False

        wait_until(up, 60, what="uvicorn to listen")
        run_id = _call("POST", f"{base}/hello/ada")["id"]
        wait_until(
            lambda: _call("GET", f"{base}/runs/{run_id}")["status"] == "completed",
            30,
            what="the run to complete",
        )
        assert _call("GET", f"{base}/runs/{run_id}")["result"] == "hello ada"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    text = log.read_text()
    assert code in (0, -signal.SIGTERM), text  # uvicorn re-raises the signal it handled
    assert "Application shutdown complete" in text, text
    assert "Traceback" not in text, text
