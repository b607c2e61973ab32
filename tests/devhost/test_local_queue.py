"""The local queue keeps the Service Bus semantics the worker relies on: sessions, locks, retries, dedup."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost.local_queue import MAX_DELIVERY_COUNT_EXCEEDED, LocalQueue, LockLostError
from shared.queueing.messages import QueueMessage, QueueUnavailableError

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A clock the test moves by hand, so windows and lock expiry need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def message(message_id: str, session_id: str = "sub-1", **body: object) -> QueueMessage:
    return QueueMessage(
        message_id=message_id,
        session_id=session_id,
        body={"kind": "webhook", "n": message_id, **body},
        correlation_id=f"corr-{message_id}",
        application_properties={"source": "test"},
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(tmp_path: Path, clock: Clock) -> LocalQueue:
    with LocalQueue(tmp_path / "queue.sqlite3", lock_seconds=30, max_delivery_count=3, clock=clock) as q:
        yield q


def drain_ids(queue: LocalQueue) -> list[str]:
    ids = []
    while (lease := queue.receive(timeout=0)) is not None:
        ids.append(lease.message_id)
        queue.complete(lease)
    return ids


def test_a_received_message_carries_what_was_sent(queue: LocalQueue, clock: Clock) -> None:
    sent = message("m1")
    queue.send(sent)
    lease = queue.receive(timeout=0)
    assert lease is not None
    assert lease.message == sent
    assert lease.delivery_count == 1
    assert lease.lock_token
    assert lease.enqueued_time == datetime.fromtimestamp(clock.now, UTC)
    assert lease.locked_until == datetime.fromtimestamp(clock.now + 30, UTC)


def test_messages_of_one_session_come_one_at_a_time_oldest_first(queue: LocalQueue) -> None:
    for n in range(3):
        queue.send(message(f"m{n}"))
    first = queue.receive(timeout=0)
    assert first is not None
    assert first.message_id == "m0"
    assert queue.receive(timeout=0.1) is None, "the session is held while m0 is locked"
    queue.complete(first)
    assert drain_ids(queue) == ["m1", "m2"]


def test_a_held_session_does_not_block_another_session(queue: LocalQueue) -> None:
    queue.send(message("a1", session_id="A"))
    queue.send(message("a2", session_id="A"))
    queue.send(message("b1", session_id="B"))
    held = queue.receive(timeout=0)
    other = queue.receive(timeout=0)
    assert held is not None
    assert other is not None
    assert (held.message_id, other.message_id) == ("a1", "b1")
    assert queue.receive(timeout=0) is None


def test_a_duplicate_inside_the_window_is_dropped_and_accepted_after_it(tmp_path: Path, clock: Clock) -> None:
    with LocalQueue(tmp_path / "q.sqlite3", duplicate_window_seconds=600, clock=clock) as queue:
        queue.send(message("same"))
        clock.advance(599)
        queue.send(message("same"))
        assert [m.message.message_id for m in queue.peek_all()] == ["same"]
        clock.advance(2)
        queue.send(message("same"))
        assert [m.message.message_id for m in queue.peek_all()] == ["same", "same"]


def test_a_duplicate_is_dropped_even_after_the_first_was_completed(queue: LocalQueue) -> None:
    queue.send(message("once"))
    assert drain_ids(queue) == ["once"]
    queue.send(message("once"))
    assert queue.receive(timeout=0) is None


def test_an_expired_lock_delivers_the_message_again_and_the_old_lease_is_void(
    queue: LocalQueue, clock: Clock
) -> None:
    queue.send(message("m1"))
    crashed = queue.receive(timeout=0)
    assert crashed is not None
    clock.advance(29)
    assert queue.receive(timeout=0) is None
    clock.advance(2)
    again = queue.receive(timeout=0)
    assert again is not None
    assert again.message_id == "m1"
    assert again.delivery_count == 2
    with pytest.raises(LockLostError):
        queue.complete(crashed)
    queue.complete(again)
    assert queue.counts().active == 0


def test_renewing_a_lock_keeps_the_message_ours(queue: LocalQueue, clock: Clock) -> None:
    queue.send(message("m1"))
    lease = queue.receive(timeout=0)
    assert lease is not None
    clock.advance(20)
    queue.renew_lock(lease)
    clock.advance(20)
    assert queue.receive(timeout=0) is None
    queue.complete(lease)


def test_abandon_makes_it_available_at_once_then_dead_letters_after_max_deliveries(
    queue: LocalQueue,
) -> None:
    queue.send(message("poison"))
    for attempt in (1, 2):
        lease = queue.receive(timeout=0)
        assert lease is not None
        assert lease.delivery_count == attempt
        queue.abandon(lease, f"boom {attempt}")
    last = queue.receive(timeout=0)
    assert last is not None
    assert last.delivery_count == 3
    queue.abandon(last, "boom 3")
    assert queue.receive(timeout=0) is None
    [dead] = queue.dead_letters()
    assert dead.message.message_id == "poison"
    assert dead.reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert dead.description == "boom 3"
    assert dead.delivery_count == 3
    assert queue.counts().dead_lettered == 1


def test_a_message_whose_last_lock_expired_is_dead_lettered_with_its_last_error(
    queue: LocalQueue, clock: Clock
) -> None:
    queue.send(message("stuck"))
    queue.send(message("next"))
    for _ in range(2):
        lease = queue.receive(timeout=0)
        assert lease is not None
        queue.abandon(lease, "timeout talking to the API")
    assert queue.receive(timeout=0) is not None
    clock.advance(31)
    after = queue.receive(timeout=0)
    assert after is not None
    assert after.message_id == "next", "the dead-lettered head no longer holds its session"
    [dead] = queue.dead_letters()
    assert (dead.reason, dead.description) == (MAX_DELIVERY_COUNT_EXCEEDED, "timeout talking to the API")


def test_complete_removes_the_message(queue: LocalQueue) -> None:
    queue.send(message("m1"))
    lease = queue.receive(timeout=0)
    assert lease is not None
    assert queue.counts().locked == 1
    queue.complete(lease)
    assert queue.peek_all() == []
    assert queue.counts().active == queue.counts().locked == 0
    with pytest.raises(LockLostError):
        queue.complete(lease)


def test_dead_letter_parks_a_message_with_reason_and_description(queue: LocalQueue) -> None:
    queue.dead_letter(message("bad"), "MalformedMessage", "body is not JSON")
    [dead] = queue.dead_letters()
    assert (dead.message.message_id, dead.reason, dead.description) == (
        "bad",
        "MalformedMessage",
        "body is not JSON",
    )


def test_a_scheduled_message_is_invisible_until_its_time(queue: LocalQueue, clock: Clock) -> None:
    later = datetime.fromtimestamp(clock.now, UTC) + timedelta(seconds=60)
    queue.send(QueueMessage(message_id="poll", session_id="s", body={"kind": "track"}, scheduled_at=later))
    assert queue.receive(timeout=0) is None
    assert queue.counts().scheduled == 1
    clock.advance(61)
    lease = queue.receive(timeout=0)
    assert lease is not None
    assert lease.enqueued_time == later


def test_messages_survive_reopening_the_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "q.sqlite3"
    with LocalQueue(path, clock=clock) as first:
        first.send(message("m1"))
        first.send(message("m2"))
        assert first.receive(timeout=0) is not None  # then the process "crashes"
    with LocalQueue(path, clock=clock, lock_seconds=30) as reopened:
        clock.advance(31)
        again = reopened.receive(timeout=0)
        assert again is not None
        assert (again.message_id, again.delivery_count) == ("m1", 2)
        reopened.complete(again)
        assert drain_ids(reopened) == ["m2"]
        reopened.send(message("m1"))
        assert reopened.peek_all() == [], "the duplicate window survives reopening too"


def test_concurrent_senders_lose_nothing_and_keep_each_session_in_order(queue: LocalQueue) -> None:
    def send_many(sender: int) -> None:
        for n in range(25):
            queue.send(message(f"{sender}-{n}", session_id=f"session-{sender}"))

    threads = [threading.Thread(target=send_many, args=(sender,)) for sender in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    received = drain_ids(queue)
    assert sorted(received) == sorted(f"{s}-{n}" for s in range(8) for n in range(25))
    for sender in range(8):
        mine = [int(i.split("-")[1]) for i in received if i.startswith(f"{sender}-")]
        assert mine == list(range(25))


def test_another_process_sees_the_same_queue(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    with LocalQueue(path) as queue:
        script = (
            "import sys\n"
            "from devhost.local_queue import LocalQueue\n"
            "from shared.queueing.messages import QueueMessage\n"
            "q = LocalQueue(sys.argv[1])\n"
            "for n in range(5):\n"
            "    q.send(QueueMessage(message_id=f'p{n}', session_id='s', body={'kind': 'webhook'}))\n"
        )
        subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, check=True, timeout=30)
        assert drain_ids(queue) == [f"p{n}" for n in range(5)]


def test_receive_waits_for_a_message_sent_meanwhile(tmp_path: Path) -> None:
    with LocalQueue(tmp_path / "q.sqlite3") as queue:
        timer = threading.Timer(0.2, queue.send, args=(message("late"),))
        timer.start()
        lease = queue.receive(timeout=5)
        timer.join()
        assert lease is not None
        assert lease.message_id == "late"


def _files_open_on(path: Path) -> int:
    """File descriptors of this process on the queue's files (database, -wal, -shm): 2-3 a connection."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue  # closed between listing and reading
        count += str(target).startswith(str(path))
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_many_short_lived_sending_threads_do_not_add_connections(tmp_path: Path) -> None:
    # The dev host once ran a thread per request, each keeping a connection for good: +1,000 open files per
    # 500 webhooks, then "unable to open database file". Threads come and go here, eight at a time.
    path = tmp_path / "q.sqlite3"
    with LocalQueue(path) as queue:

        def send_from_threads(first: int, count: int) -> None:
            for batch in range(first, first + count, 8):
                threads = [
                    threading.Thread(target=queue.send, args=(message(f"m{n}", session_id=f"s{n % 50}"),))
                    for n in range(batch, batch + 8)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=30)

        send_from_threads(0, 720)
        # Bounded by how many threads sent at once (8), not by how many ever did (720).
        assert queue.open_connections() <= 8, "no more connections than threads sending at once"
        assert _files_open_on(path) <= 3 * 8, "database, -wal and -shm of at most 8 connections"
        assert queue.counts().active == 720, "nothing lost"


def test_send_many_stores_a_page_in_one_transaction_and_drops_duplicates(queue: LocalQueue) -> None:
    queue.send(message("seen"))
    queue.send_many([message("a", "sub-1"), message("seen", "sub-2"), message("b", "sub-3")])
    assert [m.message.message_id for m in queue.peek_all()] == ["seen", "a", "b"]
    assert drain_ids(queue) == ["seen", "a", "b"]

    # One message the file cannot take: none of the page is stored, so a retried sweep starts clean.
    unstorable = QueueMessage(message_id="bad", session_id="sub-4", body={"kind": "webhook", "x": object()})
    with pytest.raises(TypeError):
        queue.send_many([message("c", "sub-5"), unstorable])
    assert queue.peek_all() == []


def test_a_message_that_cannot_be_stored_fails_its_own_send_only(queue: LocalQueue) -> None:
    # Concurrent sends share transactions; a body that cannot be serialised must not take its batch down.
    unstorable = QueueMessage(message_id="bad", session_id="s-bad", body={"kind": "webhook", "x": object()})
    errors: list[BaseException] = []

    def send(item: QueueMessage) -> None:
        try:
            queue.send(item)
        except TypeError as exc:
            errors.append(exc)

    items = [message(f"ok-{n}", session_id=f"s-{n}") for n in range(30)]
    items.insert(15, unstorable)
    threads = [threading.Thread(target=send, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(errors) == 1
    assert sorted(drain_ids(queue)) == sorted(f"ok-{n}" for n in range(30))


def test_a_duplicate_sent_at_the_same_moment_is_stored_once(queue: LocalQueue) -> None:
    threads = [threading.Thread(target=queue.send, args=(message("twice"),)) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert drain_ids(queue) == ["twice"]


@contextmanager
def _turn_held_by_another_process(path: Path) -> Iterator[None]:
    """Another process holds the queue's writers' turn (an flock on `<file>.lock`) for the block."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys\n"
            "f = open(sys.argv[1], 'ab')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.readline()\n",
            f"{path}.lock",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=10)


@pytest.mark.skipif(sys.platform == "win32", reason="the writers' turn across processes is an flock")
def test_writers_wait_for_another_process_holding_the_turn(tmp_path: Path) -> None:
    # Without the turn the send would race SQLite's lock instead, and lose for seconds in a burst (SQLite
    # sleeps up to 100 ms a try, in no order); with it, the send waits exactly until the holder lets go.
    path = tmp_path / "q.sqlite3"
    with LocalQueue(path) as queue:
        with _turn_held_by_another_process(path):
            sender = threading.Thread(target=queue.send, args=(message("waits"),))
            sender.start()
            sender.join(timeout=0.5)
            assert sender.is_alive(), "the send went ahead while another process held the writers' turn"
        sender.join(timeout=10)
        assert not sender.is_alive()
        assert drain_ids(queue) == ["waits"]


@pytest.mark.skipif(sys.platform == "win32", reason="the writers' turn across processes is an flock")
def test_a_send_that_cannot_get_the_turn_in_time_fails_as_unavailable(tmp_path: Path) -> None:
    # As SQLite's own busy timeout did: the webhook then answers 503 with Retry-After instead of hanging.
    path = tmp_path / "q.sqlite3"
    with LocalQueue(path, busy_timeout_seconds=0.3) as queue:
        with _turn_held_by_another_process(path), pytest.raises(QueueUnavailableError, match="locked"):
            queue.send(message("late"))
        queue.send(message("after"))
        assert drain_ids(queue) == ["after"]


@pytest.mark.skipif(sys.platform == "win32", reason="the writers' turn across processes is an flock")
def test_a_lock_file_that_cannot_be_opened_fails_the_send_as_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    with LocalQueue(path) as queue:
        queue.send(message("before"))
        lock = Path(f"{path}.lock")
        lock.unlink()
        lock.mkdir()  # cannot be opened for writing, not even by root
        with pytest.raises(QueueUnavailableError, match="lock file"):
            queue.send(message("refused"))
        lock.rmdir()
        assert drain_ids(queue) == ["before"]
