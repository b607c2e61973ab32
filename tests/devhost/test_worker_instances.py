"""Worker instances: one that keeps dying is started again after a delay that doubles, not in a loop."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from devhost.worker_instances import WorkerInstances


def test_an_instance_that_keeps_dying_is_started_again_after_doubling_delays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The queue's folder cannot be made (a file is in the way): every instance exits at start-up.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("LOCAL_QUEUE_PATH", str(blocker / "queue.sqlite3"))
    monkeypatch.setenv("DEVHOST_STATE_DIR", str(tmp_path))
    instances = WorkerInstances(1, "events_worker", str(blocker / "queue.sqlite3"))
    caplog.set_level(logging.ERROR, logger="devhost.worker_instances")
    instances.start()
    started = [instances.pids[0]]
    try:
        deadline = time.monotonic() + 60
        while len(caplog.records) < 3 and time.monotonic() < deadline:
            instances.keep_running()
            if instances.pids[0] != started[-1]:
                started.append(instances.pids[0])
            time.sleep(0.05)
    finally:
        instances.stop()
    delays = [record.args[2] for record in caplog.records if isinstance(record.args, tuple)]
    assert delays[:3] == [0.5, 1.0, 2.0]
    assert len(started) == 3, "started again once after each of the first two exits, not on every look"
