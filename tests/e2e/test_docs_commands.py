"""Every shell command in README.md and docs/ runs as written (the ```python blocks are
run by tests/unit/test_docs.py), so a doc and the CLI cannot drift apart.

How each command is run:

- Shell blocks (```console lines starting with ``$ ``, ```bash/```sh lines) run line by
  line with bash, in a fresh folder, with the ``durable`` of this environment on PATH;
  ``export`` lines set the environment of the lines after them. Every line must exit 0.
- A ```python block of the same page whose first line is ``# <file>.py`` is the file the
  commands use: it is written to that folder first (``no-run`` blocks too).
- Long-running commands (``durable worker``, ``durable dashboard``, ``durable events``
  without ``--count``/``--timeout``, and any line ending in ``&``) are started, checked
  to serve (a worker takes a run; a dashboard answers HTTP; ``events`` prints an event),
  then stopped with SIGTERM (a line ending in ``&`` is stopped when its block ends); a
  worker must exit 0 by itself (graceful shutdown), the others must end.
- Inline mentions (```durable ...``` in prose) are references, not runnable: each must
  name a real command and only options that command (or ``durable`` itself) has.

What is NOT as written, and why (also asserted below, so the lists cannot go stale):
``NOT_RUN`` (commands this test does not run), ``SUBSTITUTIONS`` (text replaced
before running), ``FIXTURES`` (files the docs refer to without showing them) and
``DEFAULT_APP`` (the app of a block that names none).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from durable.cli import cli
from tests.support.procs import ROOT, wait_until

pytestmark = pytest.mark.slow

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_INFO = {"console", "bash", "sh", "shell"}
BLOCK = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`(durable [^`]+)`")

#: commands the docs show that this test does not run, and why
NOT_RUN = {
    "./scripts/test": "is this very test suite (lint, mypy and pytest); CI runs it",
    "./scripts/demo": (
        "reinstalls the package into the checkout's .venv and writes durable-demo.db into "
        "the checkout; this test runs what it ends with, `durable demo`, instead"
    ),
    "redis-cli SUBSCRIBE durable:shop:workflows": (
        "a subscriber that never ends: tests/integration/test_wire_subscribers.py runs "
        "redis-cli SUBSCRIBE against a live bus and reads the messages it prints"
    ),
    "psql postgresql://app@db.internal/app": (
        "an interactive session on a host that does not exist here (the LISTEN typed into "
        "it is not a shell command): tests/integration/test_wire_subscribers.py runs psql "
        "LISTEN against the test database"
    ),
}
#: what the demo script runs, run here in its place
DEMO_INSTEAD = "durable demo --db sqlite:///durable-demo.db"
#: (page, text, replacement, why)
SUBSTITUTIONS = [
    (
        "docs/production.md",
        "postgresql://app@db.internal/app",
        "{pg_url}",
        "db.internal does not exist here: the test's PostgreSQL database stands in",
    ),
    (
        "docs/dashboard.md",
        "--port 8080",
        "--port {port}",
        "8080 may be taken on a shared machine: a free port stands in",
    ),
]
#: files the docs name without showing them (page -> {path: text})
FIXTURES = {
    "docs/dashboard.md": {
        "shop/__init__.py": "",
        "shop/app.py": (
            "from durable import Durable, Workflow, step\n"
            "app = Durable('sqlite:///shop.db', workflows=[Workflow('order', "
            "[step(lambda o: o, name='take')])])\n"
        ),
        "shop/auth.py": (
            "from durable.dashboard import Principal\n"
            "ROLES = {'ada': 'operator'}\n"
            "def check(request):\n"
            "    return Principal('ada', 'operator')\n"
        ),
    },
}
#: blocks that name no app (no --app, no DURABLE_APP) run with this one: docs/cli.md's
DEFAULT_APP = ("docs/cli.md", "myapp:app")


@dataclass
class Block:
    page: str
    index: int
    info: str
    lines: list[str]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}#{self.info}{self.index}"


def _files_of(page: str, text: str) -> dict[str, str]:
    files = {}
    for m in BLOCK.finditer(text):
        info, body = m.group(1).split(), m.group(2)
        first = body.split("\n", 1)[0].strip()
        if info[:1] == ["python"] and re.fullmatch(r"#\s*[\w/]+\.py", first):
            files[first.lstrip("#").strip()] = body
    return files


def _blocks() -> list[Block]:
    out = []
    for doc in DOCS:
        page = str(doc.relative_to(ROOT))
        text = doc.read_text()
        counts: dict[str, int] = {}
        for m in BLOCK.finditer(text):
            info = (m.group(1).split() or [""])[0]
            if info not in SHELL_INFO:
                continue
            counts[info] = counts.get(info, 0) + 1
            lines = []
            for raw in m.group(2).splitlines():
                line = raw.strip()
                if info == "console":
                    if not line.startswith("$ "):
                        continue  # output shown after a command
                    line = line[2:]
                if line and not line.startswith("#"):
                    lines.append(line)
            out.append(Block(page, counts[info], info, lines, _files_of(page, text)))
    return out


def _words(line: str) -> list[str]:
    return shlex.split(line, comments=True)


def _durable_command(words: list[str]) -> str | None:
    """The subcommand of a `durable ...` line (skipping options before it)."""
    if not words or words[0] != "durable":
        return None
    rest = words[1:]
    while rest and rest[0].startswith("-"):
        takes_value = rest[0] in ("--app", "--name", "--schema")
        rest = rest[2:] if takes_value else rest[1:]
    return rest[0] if rest else None


def _long_running(words: list[str]) -> str | None:
    command = _durable_command(words)
    if command in ("worker", "dashboard"):
        return command
    if command == "events" and not {"--count", "--timeout"} & set(words):
        return command
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Shell:
    """Runs one block's lines in one folder with one environment."""

    def __init__(self, block: Block, folder: Path, env: dict[str, str]) -> None:
        self.block = block
        self.folder = folder
        self.env = env
        self.background: list[tuple[str, subprocess.Popen[str], Path]] = []

    def run(self, line: str) -> None:
        words = _words(line)
        if words[:1] == ["export"]:
            for assignment in words[1:]:
                key, _, value = assignment.partition("=")
                self.env[key] = value
            return
        bare = " ".join(words)
        if bare in NOT_RUN:
            if bare == "./scripts/demo":
                self._foreground(DEMO_INSTEAD)
            return
        if words[-1:] == ["&"]:
            command = shlex.join(words[:-1])
            self._start(command, _long_running(words[:-1]) or "other")
            return
        kind = _long_running(words)
        if kind is not None:  # in the foreground it would run until stopped: so stop it
            self._start(shlex.join(words), kind)
            self.stop()
            return
        self._foreground(line)

    def _foreground(self, line: str) -> None:
        proc = subprocess.run(
            ["bash", "-c", line],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 0, (
            f"{self.block.where}: `{line}` exited {proc.returncode}\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )

    def _start(self, line: str, kind: str) -> None:
        log = self.folder / f"bg{len(self.background)}.log"
        out = open(log, "w")  # noqa: SIM115 - the child keeps writing to it
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=self.folder,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        out.close()
        self.background.append((kind, proc, log))
        try:
            self._probe(kind, line, proc, log)
        except BaseException:
            self.stop()
            raise

    def _probe(self, kind: str, line: str, proc: subprocess.Popen[str], log: Path) -> None:
        def alive() -> None:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{self.block.where}: `{line}` ended ({proc.returncode}): {log.read_text()[-2000:]}"
                )

        if kind == "dashboard":
            port = int(_words(line)[_words(line).index("--port") + 1])

            def answers() -> bool:
                alive()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                        return bool(r.status == 200)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    return False

            wait_until(answers, 60, interval=0.2, what=f"`{line}` to answer HTTP")
        elif kind == "worker":
            run_id = self._start_a_run(line)
            wait_until(
                lambda: alive() is None and self._claimed(line, run_id),
                90,
                interval=0.3,
                what=f"`{line}` to take a run",
            )
        elif kind == "events":
            deadline = time.monotonic() + 90
            while not _safe(log).strip():  # give it runs to report until it prints
                alive()
                assert time.monotonic() < deadline, f"{self.block.where}: `{line}` printed nothing"
                self._start_a_run(line)
                time.sleep(1.0)
        else:
            time.sleep(0.5)
            alive()

    def _app_spec(self, line: str) -> str:
        words = _words(line)
        if "--app" in words:
            return words[words.index("--app") + 1]
        return self.env["DURABLE_APP"]

    def _python(self, code: str, line: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", code, self._app_spec(line)],
            cwd=self.folder,
            env={**self.env, "PYTHONPATH": str(self.folder)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def _start_a_run(self, line: str) -> str:
        """Start a run of the app's first workflow (the probe's own run)."""
        return self._python(_LOAD + "print(app.start(next(iter(app.workflows)), 'probe'))", line)

    def _claimed(self, line: str, run_id: str) -> bool:
        code = _LOAD + f"print(app.get_execution({run_id!r}).attempt)"
        return int(self._python(code, line)) >= 1

    def stop(self) -> None:
        for kind, proc, log in reversed(self.background):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                code = proc.wait(45)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                raise AssertionError(
                    f"{self.block.where}: a {kind} did not stop on SIGTERM: {_safe(log)}"
                ) from None
            if kind == "worker":
                assert code == 0, f"{self.block.where}: the worker exited {code}: {_safe(log)}"
        self.background.clear()


_LOAD = "import sys\nfrom durable.cli.loading import load_app\napp = load_app(sys.argv[1])\n"


def _safe(log: Path) -> str:
    try:
        return log.read_text()[-2000:]
    except OSError:
        return ""


BLOCKS = _blocks()


def _prepare(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> Shell:
    folder = tmp_path / "work"
    folder.mkdir()
    values: dict[str, str] = {}
    subs = [s for s in SUBSTITUTIONS if s[0] == block.page]
    for _, _, replacement, _ in subs:
        if "{pg_url}" in replacement and "pg_url" not in values:
            values["pg_url"] = str(request.getfixturevalue("empty_pg_url"))
        if "{port}" in replacement and "port" not in values:
            values["port"] = str(_free_port())
    files = dict(block.files)
    files.update(FIXTURES.get(block.page, {}))
    if block.page != DEFAULT_APP[0] and not any(
        "--app" in ln or "DURABLE_APP" in ln for ln in block.lines
    ):
        default_page = next(b for b in BLOCKS if b.page == DEFAULT_APP[0])
        files.update(default_page.files)
    for rel, text in files.items():
        for _, old, new, _ in subs:
            text = text.replace(old, new.format(**values))
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "NO_COLOR": "1",
    }
    env.pop("DURABLE_APP", None)
    if not any("--app" in ln or "DURABLE_APP" in ln for ln in block.lines):
        env["DURABLE_APP"] = DEFAULT_APP[1]
    shell = Shell(block, folder, env)
    shell.values = values  # type: ignore[attr-defined]
    return shell


def _substituted(block: Block, line: str, values: dict[str, str]) -> str:
    for page, old, new, _ in SUBSTITUTIONS:
        if page == block.page:
            line = line.replace(old, new.format(**values))
    if _durable_command(_words(line)) == "dashboard" and "--port" not in _words(line):
        port = values.get("port")
        if port is not None:  # the default port is 8080: the same stand-in as above
            line = line.replace(" dashboard", f" dashboard --port {port}", 1)
    return line


@pytest.mark.timeout(900)  # many CLI processes in a row, on a busy machine
@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_shell_block_runs_as_written(block: Block, tmp_path: Path, request) -> None:
    shell = _prepare(block, tmp_path, request)
    values: dict[str, str] = shell.values  # type: ignore[attr-defined]
    try:
        for line in block.lines:
            shell.run(_substituted(block, line, values))
    finally:
        shell.stop()


def test_the_lists_of_exceptions_are_current() -> None:
    lines = {ln for b in BLOCKS for ln in b.lines}
    bare = {ln.split("#", 1)[0].strip() for ln in lines}
    for command in NOT_RUN:
        assert command in bare, f"NOT_RUN lists {command!r}, which no doc shows any more"
    texts = {str(d.relative_to(ROOT)): d.read_text() for d in DOCS}
    for page, old, _, _ in SUBSTITUTIONS:
        assert old in texts[page], f"SUBSTITUTIONS: {old!r} is no longer in {page}"
    for page in FIXTURES:
        assert page in texts
    assert any(b.page == DEFAULT_APP[0] and "myapp.py" in b.files for b in BLOCKS)


def _inline_mentions() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        text = BLOCK.sub("", doc.read_text())
        for m in INLINE.finditer(text):
            out.append((str(doc.relative_to(ROOT)), " ".join(m.group(1).split())))
    return out


@pytest.mark.parametrize(("page", "mention"), _inline_mentions())
def test_inline_mentions_name_real_commands_and_options(page: str, mention: str) -> None:
    words = mention.split()
    name = _durable_command(words)
    assert name is not None, f"{page}: `{mention}` names no command"
    command = cli.commands.get(name)
    assert command is not None, f"{page}: `{mention}`: durable has no command {name!r}"
    known = {opt for p in [*command.params, *cli.params] for opt in p.opts}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            known |= {opt for p in sub.params for opt in p.opts}
    for word in words:
        flag = word.split("=", 1)[0]
        if flag.startswith("-") and flag not in ("-", "--", "...") and not flag.startswith("-…"):
            assert flag in known, f"{page}: `{mention}`: {name} has no option {flag}"
