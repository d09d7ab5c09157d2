"""SQLite faults under load: the file read-only for a while (``chattr +i``), a full disk
(a small tmpfs filled up), the file deleted under a running worker.

The worker's loops survive the fault and resume by themselves when it is gone;
``start()`` meanwhile gets a StorageError with SQLite's own message; a deleted
file stops the worker loudly instead of committing into an unlinked file.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable import Durable
from durable.errors import DatabaseGoneError, StorageError
from tests.support.faults import FLOW, completed, run_under
from tests.support.procs import wait_until

pytestmark = pytest.mark.slow


def _start_refused(app: Durable, *needles: str) -> str:
    """``start()`` during the fault: a StorageError saying what is wrong."""
    with pytest.raises(StorageError) as info:
        app.start(FLOW, {"i": -1})
    text = str(info.value)
    assert "cannot rollback" not in text
    assert any(n in text for n in needles), text
    return text


@pytest.mark.timeout(180)
def test_a_read_only_file_for_a_while(tmp_path: Path) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    db = tmp_path / "durable.db"
    url = f"sqlite:///{db}"
    # the -shm file is memory-mapped: making it immutable would kill the process with
    # SIGBUS, which no program survives; the database and its WAL are what matter
    files = [db, Path(f"{db}-wal")]

    def fault(app: Durable) -> None:
        wait_until(lambda: completed(app) > 20, 60, 0.05, "some runs to complete")
        subprocess.run(["chattr", "+i", *map(str, files)], check=True)
        try:
            _start_refused(app, "readonly", "disk I/O error")
            time.sleep(3)  # longer than the stale timeout: runs are mid-flight
        finally:
            subprocess.run(["chattr", "-i", *map(str, files)], check=True)

    print("read-only:", run_under(url, tmp_path, 200, fault))


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (a full disk needs one)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.timeout(180)
def test_a_full_disk_for_a_while(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "8m") as disk:
        url = f"sqlite:///{disk}/durable.db"
        filler = disk / "filler"

        def fault(app: Durable) -> None:
            wait_until(lambda: completed(app) > 20, 60, 0.05, "some runs to complete")
            with contextlib.suppress(OSError), open(filler, "wb") as out:
                while True:  # every last block
                    out.write(b"\0" * 4096)
                    out.flush()
            try:
                # (no start() check here: SQLite may still find room in its WAL for one
                # more insert; the worker's own writes do fail, which is the fault)
                time.sleep(3)
            finally:
                filler.unlink()

        print("full disk:", run_under(url, tmp_path, 200, fault))


@pytest.mark.timeout(120)
def test_a_deleted_database_file_stops_the_worker_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "durable.db"
    app = Durable(f"sqlite:///{db}", [FLOW], poll_interval_seconds=0.1)
    monkeypatch.setenv("DURABLE_FAULT_EFFECTS", str(tmp_path / "effects.log"))
    app.start_many(FLOW, [{"i": i} for i in range(20)])
    worker = app.start_worker({"default": 2})
    try:
        wait_until(lambda: completed(app) > 0, 60, 0.05, "a first completion")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        wait_until(lambda: worker.fatal is not None, 30, 0.05, "the worker to stop")
        assert isinstance(worker.fatal, DatabaseGoneError)
        assert "was deleted or replaced" in str(worker.fatal)
        with pytest.raises(DatabaseGoneError):
            app.start(FLOW, {"i": 100})
        assert any(r.levelname == "CRITICAL" for r in caplog.records)
    finally:
        app.close()
