"""The queue runner feeds a Service Bus-triggered function from the local queue and settles like the host."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import azure.functions as func
import pytest

from devhost import PROJECT_ROOT
from devhost.local_queue import MAX_DELIVERY_COUNT_EXCEEDED, LocalQueue
from devhost.queue_runner import QueueRunner, queue_functions
from shared.queueing.messages import QueueMessage


def make_app(handle: Callable[[func.ServiceBusMessage], None]) -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.service_bus_queue_trigger(
        arg_name="msg",
        queue_name="%TEST_QUEUE_NAME%",
        connection="ServiceBusConnection",
        is_sessions_enabled=True,
    )
    def events(msg: func.ServiceBusMessage) -> None:
        handle(msg)

    return app


class Recorder:
    """Remembers every delivery; fails the first `failures` deliveries of each message."""

    def __init__(self, failures: int = 0, work_seconds: float = 0.0) -> None:
        self.failures = failures
        self.work_seconds = work_seconds
        self.deliveries: list[func.ServiceBusMessage] = []
        self.overlaps: list[str] = []
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, msg: func.ServiceBusMessage) -> None:
        with self._lock:
            self.deliveries.append(msg)
            if msg.session_id in self._in_flight:
                self.overlaps.append(msg.session_id or "")
            self._in_flight.add(msg.session_id or "")
        try:
            time.sleep(self.work_seconds)
            if (msg.delivery_count or 0) <= self.failures:
                raise RuntimeError(f"simulated failure on delivery {msg.delivery_count}")
        finally:
            with self._lock:
                self._in_flight.discard(msg.session_id or "")

    def bodies(self) -> list[dict[str, object]]:
        with self._lock:
            return [json.loads(m.get_body()) for m in self.deliveries]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached in time")
        time.sleep(0.02)


def message(message_id: str, session_id: str = "sub-1", **body: object) -> QueueMessage:
    return QueueMessage(
        message_id=message_id,
        session_id=session_id,
        body={"kind": "webhook", "id": message_id, **body},
        correlation_id=f"corr-{message_id}",
        application_properties={"origin": "test"},
    )


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[LocalQueue]:
    with LocalQueue(tmp_path / "queue.sqlite3", max_delivery_count=3, lock_seconds=5) as q:
        yield q


@contextmanager
def running(app: func.FunctionApp, queue: LocalQueue, workers: int = 4) -> Iterator[QueueRunner]:
    runner = QueueRunner.for_app(app, queue, workers=workers, receive_timeout=0.1)
    assert runner is not None
    runner.start()
    try:
        yield runner
    finally:
        runner.stop(timeout=10)


def test_the_trigger_is_read_from_the_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_QUEUE_NAME", "saas-events")
    [function] = queue_functions(make_app(Recorder()))
    assert (function.name, function.queue_name, function.argument) == ("events", "saas-events", "msg")


def test_an_app_without_a_queue_trigger_needs_no_runner(queue: LocalQueue) -> None:
    assert QueueRunner.for_app(func.FunctionApp(), queue) is None


def test_a_message_arrives_with_its_ids_and_is_completed(queue: LocalQueue) -> None:
    recorder = Recorder()
    queue.send(message("op-1", session_id="sub-9"))
    with running(make_app(recorder), queue):
        wait_until(
            lambda: queue.counts().active + queue.counts().locked == 0 and len(recorder.deliveries) == 1
        )
    [delivered] = recorder.deliveries
    assert delivered.message_id == "op-1"
    assert delivered.session_id == "sub-9"
    assert delivered.correlation_id == "corr-op-1"
    assert delivered.content_type == "application/json"
    assert delivered.delivery_count == 1
    assert delivered.lock_token
    assert delivered.enqueued_time_utc is not None
    assert delivered.application_properties == {"origin": "test"}
    assert delivered.user_properties == {"origin": "test"}
    assert json.loads(delivered.get_body()) == {"kind": "webhook", "id": "op-1"}
    assert queue.dead_letters() == []


def test_an_exception_makes_the_message_come_again_with_a_higher_delivery_count(queue: LocalQueue) -> None:
    recorder = Recorder(failures=2)
    queue.send(message("flaky"))
    with running(make_app(recorder), queue):
        wait_until(lambda: len(recorder.deliveries) == 3 and not queue.peek_all())
    assert [m.delivery_count for m in recorder.deliveries] == [1, 2, 3]
    assert {m.message_id for m in recorder.deliveries} == {"flaky"}
    assert queue.dead_letters() == []


def test_a_message_that_always_fails_is_dead_lettered_after_max_deliveries(queue: LocalQueue) -> None:
    recorder = Recorder(failures=99)
    queue.send(message("poison"))
    with running(make_app(recorder), queue):
        wait_until(lambda: len(queue.dead_letters()) == 1)
    [dead] = queue.dead_letters()
    assert dead.reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert "simulated failure on delivery 3" in dead.description
    assert [m.delivery_count for m in recorder.deliveries] == [1, 2, 3]
    assert queue.peek_all() == []


def test_each_session_is_processed_strictly_in_order_and_never_twice_at_once(queue: LocalQueue) -> None:
    recorder = Recorder(work_seconds=0.01)
    for n in range(10):
        for session in ("A", "B", "C"):
            queue.send(message(f"{session}{n}", session_id=session, n=n))
    with running(make_app(recorder), queue, workers=4):
        wait_until(lambda: len(recorder.deliveries) == 30)
    for session in ("A", "B", "C"):
        order = [b["n"] for b in recorder.bodies() if str(b["id"]).startswith(session)]
        assert order == list(range(10)), session
    assert recorder.overlaps == []


def test_sessions_run_in_parallel_while_one_is_slow(queue: LocalQueue) -> None:
    release = threading.Event()
    seen: list[str] = []

    def handle(msg: func.ServiceBusMessage) -> None:
        seen.append(msg.message_id)
        if msg.session_id == "slow":
            release.wait(10)

    queue.send(message("slow-1", session_id="slow"))
    queue.send(message("fast-1", session_id="fast"))
    queue.send(message("fast-2", session_id="fast"))
    with running(make_app(handle), queue, workers=2):
        wait_until(lambda: "fast-2" in seen)
        assert "slow-1" in seen
        release.set()


def test_a_function_slower_than_the_lock_keeps_its_message(tmp_path: Path) -> None:
    # Work lasts 2.5 locks; renewals every third of a lock leave slack for a loaded CI machine.
    recorder = Recorder(work_seconds=2.5)
    with LocalQueue(tmp_path / "q.sqlite3", lock_seconds=1.0) as queue:
        queue.send(message("long"))
        with running(make_app(recorder), queue, workers=2):
            wait_until(lambda: not queue.peek_all())
    assert [m.delivery_count for m in recorder.deliveries] == [1]


def test_stop_ends_every_worker_thread(queue: LocalQueue) -> None:
    runner = QueueRunner.for_app(make_app(Recorder()), queue, workers=3, receive_timeout=0.1)
    assert runner is not None
    runner.start()
    started = time.monotonic()
    runner.stop(timeout=5)
    assert time.monotonic() - started < 5
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("devhost-queue-"))


def test_sessions_run_in_parallel_up_to_host_json_limit_each_in_order(queue: LocalQueue) -> None:
    # The Functions host works on maxConcurrentSessions sessions at once; so does the dev host, read from
    # the same host.json. Every handler holds its message until the test has seen how many run together.
    limit = json.loads((PROJECT_ROOT / "host.json").read_text())["extensions"]["serviceBus"][
        "maxConcurrentSessions"
    ]
    sessions = [f"sub-{n}" for n in range(limit + 4)]
    for round_ in range(3):
        for session in sessions:
            queue.send(message(f"{session}-{round_}", session_id=session, n=round_))
    release = threading.Event()
    lock = threading.Lock()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    order: dict[str, list[int]] = {session: [] for session in sessions}

    def handle(msg: func.ServiceBusMessage) -> None:
        session = msg.session_id or ""
        with lock:
            if session in in_flight:
                overlaps.append(session)
            in_flight.add(session)
            order[session].append(json.loads(msg.get_body())["n"])
        release.wait(10)
        with lock:
            in_flight.discard(session)

    runner = QueueRunner.for_app(make_app(handle), queue, receive_timeout=0.1)
    assert runner is not None
    assert runner.workers == limit
    runner.start()
    try:
        wait_until(lambda: len(in_flight) == limit)
        time.sleep(0.3)  # time enough for one more worker to start, if there were one
        assert len(in_flight) == limit, "no more sessions at once than maxConcurrentSessions"
        release.set()
        wait_until(lambda: sum(len(done) for done in order.values()) == 3 * len(sessions))
    finally:
        release.set()
        runner.stop()
    assert overlaps == []
    assert all(done == [0, 1, 2] for done in order.values()), order
