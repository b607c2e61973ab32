"""A local stand-in for the Service Bus queue, on one SQLite file, for the dev host and the tests.

Azure uses the real Service Bus; this file only keeps the semantics the worker relies on, so that code
which works here behaves the same there. It lives beside the dev host, not in the app package: the app
reaches it only through the queue backend registry (`shared.queueing.backends`), once
`register_local_queue()` has named it `local`. What it keeps:

- duplicate detection: a `message_id` sent again within the window is dropped;
- sessions: messages of one session are delivered one at a time, oldest first, and a session whose message
  is locked (being processed) never holds up another session;
- peek-lock: a received message is locked for `lock_seconds`; `complete` removes it, `abandon` makes it
  available again at once, and an expired lock does the same (a crashed consumer loses nothing);
- every delivery counts; a message delivered `max_delivery_count` times and still not completed moves to
  the dead-letter list with reason "MaxDeliveryCountExceeded", as source `deadletter` (Service Bus's
  dead-letter sub-queue); what the worker parks (`dead_letter`) is source `parking` (the parking queue);
- an operator lists both, replays an entry (the copy enters the queue and the entry leaves it in one
  transaction) or discards it (`LocalDeadLetters`, the dev host's `DeadLetterQueues`);
- scheduled messages (`QueueMessage.scheduled_at`) are invisible until their time.

The file is shared safely between threads and processes (WAL journal, every change in an immediate
transaction): the dev host's webhook sends while its queue runner receives. Connections are lent from a small
pool for one call at a time, so their number follows how many threads use the queue at once, never how many
threads ever did (a thread per request once meant a connection, and open files, per request).

Writers take turns instead of racing for SQLite's lock: a thread lock inside the process, then an exclusive
lock on `<file>.lock` across processes, then the transaction. SQLite's own answer to a busy file is to sleep
and try again, up to 100 ms a try, with no order among the sleepers; in a burst a webhook's send lost that
race for seconds. Sends that arrive while another is written go into the next transaction together
(`devhost.group_commit`); each still returns only once its message is on disk.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devhost.group_commit import GroupCommit
from shared.config import Settings
from shared.domain.dead_letters import DeadLetterEntry, DeadLetterSource, parked_history
from shared.logs import get_logger
from shared.queueing.backends import register_dead_letter_backend, register_queue_backend
from shared.queueing.messages import QueueMessage, QueueUnavailableError, send_traced

if sys.platform != "win32":
    import fcntl

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
_POLL_SECONDS = 0.05
_BUSY_TIMEOUT_SECONDS = 10.0
_TURN_POLL_SECONDS = 0.002
# Idle connections kept for reuse; more callers at once get a connection of their own, closed after use.
IDLE_CONNECTIONS = 32

_log = get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    session_key TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    properties TEXT NOT NULL,
    available_at REAL NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until REAL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages (session_key, locked_until);
CREATE INDEX IF NOT EXISTS messages_by_age ON messages (available_at, seq);
CREATE TABLE IF NOT EXISTS seen_ids (message_id TEXT PRIMARY KEY, seen_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS seen_ids_by_age ON seen_ids (seen_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    properties TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    delivery_count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    description TEXT NOT NULL,
    dead_lettered_at REAL NOT NULL,
    source TEXT NOT NULL DEFAULT 'parking'
);
"""
# A file written before dead letters had a source: the broker's moves are told apart by their reason.
_ADD_SOURCE = (
    "ALTER TABLE dead_letters ADD COLUMN source TEXT NOT NULL DEFAULT 'parking'",
    "UPDATE dead_letters SET source = 'deadletter' WHERE reason = 'MaxDeliveryCountExceeded'",
)

_MESSAGE_COLUMNS = (
    "seq, message_id, session_id, body, content_type, correlation_id, properties, available_at, "
    "delivery_count, lock_token, locked_until, last_error"
)


@dataclass(frozen=True)
class _Row:
    """A message as the file stores it, serialised before it waits for the write lock."""

    message_id: str
    session_id: str
    body: str
    content_type: str
    correlation_id: str
    properties: str
    scheduled_at: float | None

    @classmethod
    def of(cls, message: QueueMessage) -> _Row:
        return cls(
            message_id=message.message_id or uuid.uuid4().hex,
            session_id=message.session_id,
            body=json.dumps(message.body),
            content_type=message.content_type,
            correlation_id=message.correlation_id,
            properties=json.dumps(message.application_properties),
            scheduled_at=message.scheduled_at.timestamp() if message.scheduled_at else None,
        )


class LockLostError(RuntimeError):
    """The lease expired or was settled already; the message is (or was) someone else's now."""


@dataclass(frozen=True)
class LeasedMessage:
    """A received message, locked for this receiver until `locked_until`."""

    message: QueueMessage
    sequence_number: int
    lock_token: str
    delivery_count: int
    enqueued_time: datetime
    locked_until: datetime

    @property
    def message_id(self) -> str:
        return self.message.message_id

    @property
    def session_id(self) -> str:
        return self.message.session_id


@dataclass(frozen=True)
class QueuedMessage:
    """A message still in the queue, as `peek_all` sees it (no lock taken)."""

    message: QueueMessage
    sequence_number: int
    delivery_count: int
    enqueued_time: datetime
    locked: bool
    last_error: str


@dataclass(frozen=True)
class DeadLetter:
    """A message parked for a person to look at, with why; `source` says whether the worker parked it or
    the queue moved it after its last delivery, `sequence_number` names it among the dead letters."""

    message: QueueMessage
    reason: str
    description: str
    delivery_count: int
    enqueued_time: datetime
    dead_lettered_time: datetime
    source: DeadLetterSource = DeadLetterSource.PARKING
    sequence_number: int = 0


@dataclass(frozen=True)
class QueueCounts:
    active: int
    locked: int
    scheduled: int
    dead_lettered: int


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _message_from_row(row: sqlite3.Row) -> QueueMessage:
    return QueueMessage(
        message_id=row["message_id"],
        session_id=row["session_id"],
        body=json.loads(row["body"]),
        content_type=row["content_type"],
        correlation_id=row["correlation_id"],
        application_properties=json.loads(row["properties"]),
    )


class LocalQueue:
    """Service Bus-like queue on SQLite. Implements `EventQueue`; the dev host's runner receives from it."""

    def __init__(
        self,
        path: str | Path,
        *,
        lock_seconds: float = 30,
        max_delivery_count: int = 10,
        duplicate_window_seconds: float = 600,
        busy_timeout_seconds: float = _BUSY_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.lock_seconds = lock_seconds
        self.max_delivery_count = max_delivery_count
        self.duplicate_window_seconds = duplicate_window_seconds
        self.busy_timeout_seconds = busy_timeout_seconds
        self._clock = clock
        self._idle: list[sqlite3.Connection] = []
        self._idle_lock = threading.Lock()
        # Writers of this process one at a time, then one process at a time (`_writer_turn`).
        self._write_lock = threading.Lock()
        # One receiver of this process looks for work at a time: sixteen runner threads that all saw the
        # same message would each take the write lock only for all but one to find it gone.
        self._receive_lock = threading.Lock()
        self._sends: GroupCommit[_Row, bool] = GroupCommit(self._insert_rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # executescript commits on its own; each CREATE ... IF NOT EXISTS is atomic, so racing openers agree.
        with self._connection() as db:
            db.executescript(_SCHEMA)
            self._migrate(db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        columns = {row["name"] for row in db.execute("PRAGMA table_info(dead_letters)")}
        if "source" in columns:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have added it between our look and our lock.
            if "source" not in {row["name"] for row in db.execute("PRAGMA table_info(dead_letters)")}:
                for statement in _ADD_SOURCE:
                    db.execute(statement)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # --- connections -------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE, so two processes
        # never both read a message as available and then both lock it. Lent to one thread at a time,
        # but not always the same one: hence check_same_thread=False.
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout_seconds, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        # "Durably accepted" (the EventQueue contract) means on disk before send returns.
        db.execute("PRAGMA synchronous=FULL")
        return db

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for one call: an idle one if any, else a new one; given back (or closed) after."""
        with self._idle_lock:
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = self._open()
        try:
            yield db
        finally:
            with self._idle_lock:
                # One left inside a transaction (a failed ROLLBACK) would hand its lock to the next caller.
                keep = not db.in_transaction and len(self._idle) < IDLE_CONNECTIONS
                if keep:
                    self._idle.append(db)
            if not keep:
                db.close()

    def open_connections(self) -> int:
        """Connections kept idle for reuse (the ones lent out right now are not counted)."""
        with self._idle_lock:
            return len(self._idle)

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """This process's turn to write, then this process's turn among the processes sharing the file.

        Waits as long as SQLite's busy timeout at most, then raises sqlite3.OperationalError as SQLite would
        (a send then fails as QueueUnavailableError, and the webhook answers 503 with Retry-After)."""
        deadline = time.monotonic() + self.busy_timeout_seconds
        if not self._write_lock.acquire(timeout=self.busy_timeout_seconds):
            raise sqlite3.OperationalError("database is locked: another writer of this process holds it")
        try:
            if sys.platform == "win32":  # no flock: SQLite's busy timeout alone orders the processes
                yield
                return
            with self._process_turn(deadline):
                yield
        finally:
            self._write_lock.release()

    @contextmanager
    def _process_turn(self, deadline: float) -> Iterator[None]:
        # Opened per turn (tens of microseconds): closing it releases the lock, whatever happens.
        try:
            turn = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise sqlite3.OperationalError(f"cannot open the writers' lock file: {exc}") from exc
        try:
            while True:
                try:
                    fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # flock has no timeout: look again every 2 ms (a turn lasts about a millisecond).
                    if time.monotonic() >= deadline:
                        raise sqlite3.OperationalError(
                            "database is locked: another process holds the writers' turn"
                        ) from None
                    time.sleep(_TURN_POLL_SECONDS)
            yield
        finally:
            os.close(turn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._writer_turn(), self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        """Closes the idle connections; the file keeps all messages for the next open."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()

    def __enter__(self) -> LocalQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- EventQueue --------------------------------------------------------------------------------

    def send(self, message: QueueMessage) -> None:
        """Stores the message (after duplicate detection); QueueUnavailableError if the file refuses. Its
        application properties (the trace context among them) are stored and handed back on receive."""
        send_traced(message, "local", self._store)

    def send_many(self, messages: Sequence[QueueMessage]) -> None:
        """Stores a page of messages in one transaction (one sync to disk, not one per message): all are
        accepted (duplicates dropped) or, with QueueUnavailableError, none."""
        traced: list[QueueMessage] = []
        for message in messages:
            send_traced(message, "local", traced.append)
        rows = [_Row.of(message) for message in traced]
        try:
            accepted = self._insert_rows(rows)
        except sqlite3.Error as exc:
            raise QueueUnavailableError(
                f"local queue {self.path} did not accept the messages: {exc}"
            ) from exc
        for row, stored in zip(rows, accepted, strict=True):
            if not stored:
                _log.info("duplicate message dropped", extra={"message_id": row.message_id})

    def _store(self, message: QueueMessage) -> None:
        row = _Row.of(message)  # on the sender's thread: a body that cannot be stored fails only its sender
        try:
            accepted = self._sends.submit(row)
        except sqlite3.Error as exc:
            raise QueueUnavailableError(f"local queue {self.path} did not accept the message: {exc}") from exc
        if not accepted:
            _log.info("duplicate message dropped", extra={"message_id": row.message_id})

    def _insert_rows(self, rows: Sequence[_Row]) -> list[bool]:
        """Inserts `rows` in one transaction; for each, False when it was a duplicate."""
        with self._transaction() as db:
            now = self._clock()
            return [self._insert_row(db, row, now) for row in rows]

    def _insert_row(self, db: sqlite3.Connection, row: _Row, now: float) -> bool:
        """Inserts inside the caller's transaction; False for a duplicate id within the window."""
        db.execute("DELETE FROM seen_ids WHERE seen_at <= ?", (now - self.duplicate_window_seconds,))
        if db.execute("SELECT 1 FROM seen_ids WHERE message_id = ?", (row.message_id,)).fetchone():
            return False
        db.execute("INSERT INTO seen_ids (message_id, seen_at) VALUES (?, ?)", (row.message_id, now))
        db.execute(
            "INSERT INTO messages (message_id, session_id, session_key, body, content_type, "
            "correlation_id, properties, available_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.message_id,
                row.session_id,
                # A message without a session is a session of its own: it never waits for another.
                row.session_id or f"\x00{row.message_id}",
                row.body,
                row.content_type,
                row.correlation_id,
                row.properties,
                max(now, row.scheduled_at) if row.scheduled_at is not None else now,
            ),
        )
        return True

    def dead_letter(self, message: QueueMessage, reason: str, description: str) -> None:
        now = self._clock()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO dead_letters (message_id, session_id, body, content_type, correlation_id, "
                "properties, enqueued_at, delivery_count, reason, description, dead_lettered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (
                    message.message_id,
                    message.session_id,
                    json.dumps(message.body),
                    message.content_type,
                    message.correlation_id,
                    json.dumps(message.application_properties),
                    now,
                    reason,
                    description,
                    now,
                ),
            )
        _log.warning("message dead-lettered", extra={"message_id": message.message_id, "reason": reason})

    # --- receiving side ----------------------------------------------------------------------------

    def receive(self, timeout: float) -> LeasedMessage | None:
        """The oldest available message of a session nobody holds, locked for us; None after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            with self._receive_lock:
                leased = self._lease_next()
            if leased is not None:
                return leased
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(_POLL_SECONDS, remaining))

    def _next_available(self, db: sqlite3.Connection, now: float) -> sqlite3.Row | None:
        # The oldest visible message whose session has no locked message is, by construction, the head
        # of its session: that is what keeps each session in order. (The connection's row_factory makes
        # rows sqlite3.Row; the cursor is typed Any.)
        row: sqlite3.Row | None = db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m WHERE m.available_at <= ? "  # noqa: S608
            "AND NOT EXISTS (SELECT 1 FROM messages held WHERE held.session_key = m.session_key "
            "AND held.locked_until > ?) ORDER BY m.available_at, m.seq LIMIT 1",
            (now, now),
        ).fetchone()
        return row

    def _lease_next(self) -> LeasedMessage | None:
        # A plain read first: idle pollers must not take the write lock every few milliseconds.
        with self._connection() as db:
            if self._next_available(db, self._clock()) is None:
                return None
        with self._transaction() as db:
            while True:
                now = self._clock()
                row = self._next_available(db, now)
                if row is None:
                    return None
                if row["delivery_count"] < self.max_delivery_count:
                    return self._lock(db, row, now)
                # Delivered the maximum number of times and its last lock expired without settlement.
                self._move_to_dead_letters(db, row, MAX_DELIVERY_COUNT_EXCEEDED, row["last_error"], now)

    def _lock(self, db: sqlite3.Connection, row: sqlite3.Row, now: float) -> LeasedMessage:
        token = str(uuid.uuid4())
        locked_until = now + self.lock_seconds
        db.execute(
            "UPDATE messages SET lock_token = ?, locked_until = ?, delivery_count = delivery_count + 1 "
            "WHERE seq = ?",
            (token, locked_until, row["seq"]),
        )
        return LeasedMessage(
            message=_message_from_row(row),
            sequence_number=row["seq"],
            lock_token=token,
            delivery_count=row["delivery_count"] + 1,
            enqueued_time=_utc(row["available_at"]),
            locked_until=_utc(locked_until),
        )

    def _move_to_dead_letters(
        self, db: sqlite3.Connection, row: sqlite3.Row, reason: str, description: str, now: float
    ) -> None:
        db.execute(
            "INSERT INTO dead_letters (message_id, session_id, body, content_type, correlation_id, "
            "properties, enqueued_at, delivery_count, reason, description, dead_lettered_at, source) "
            "SELECT message_id, session_id, body, content_type, correlation_id, properties, available_at, "
            "delivery_count, ?, ?, ?, ? FROM messages WHERE seq = ?",
            (reason, description, now, DeadLetterSource.DEAD_LETTER.value, row["seq"]),
        )
        db.execute("DELETE FROM messages WHERE seq = ?", (row["seq"],))
        _log.warning(
            "message dead-lettered",
            extra={
                "message_id": row["message_id"],
                "reason": reason,
                "delivery_count": row["delivery_count"],
            },
        )

    def _held_row(self, db: sqlite3.Connection, lease: LeasedMessage) -> sqlite3.Row:
        row: sqlite3.Row | None = db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE seq = ? AND lock_token = ? "  # noqa: S608
            "AND locked_until > ?",
            (lease.sequence_number, lease.lock_token, self._clock()),
        ).fetchone()
        if row is None:
            raise LockLostError(f"the lock on message {lease.message_id!r} expired or was settled")
        return row

    def complete(self, lease: LeasedMessage) -> None:
        """Removes the message for good; LockLostError if our lock is gone (it will be delivered again)."""
        with self._transaction() as db:
            row = self._held_row(db, lease)
            db.execute("DELETE FROM messages WHERE seq = ?", (row["seq"],))

    def abandon(self, lease: LeasedMessage, reason: str) -> None:
        """Gives the message back at once, or dead-letters it once it was delivered the maximum times."""
        with self._transaction() as db:
            row = self._held_row(db, lease)
            if row["delivery_count"] >= self.max_delivery_count:
                self._move_to_dead_letters(db, row, MAX_DELIVERY_COUNT_EXCEEDED, reason, self._clock())
                return
            db.execute(
                "UPDATE messages SET lock_token = NULL, locked_until = NULL, last_error = ? WHERE seq = ?",
                (reason, row["seq"]),
            )

    def renew_lock(self, lease: LeasedMessage) -> LeasedMessage:
        """Extends our lock by `lock_seconds` (what the Functions host does while a function runs)."""
        with self._transaction() as db:
            row = self._held_row(db, lease)
            locked_until = self._clock() + self.lock_seconds
            db.execute("UPDATE messages SET locked_until = ? WHERE seq = ?", (locked_until, row["seq"]))
        return LeasedMessage(
            message=lease.message,
            sequence_number=lease.sequence_number,
            lock_token=lease.lock_token,
            delivery_count=lease.delivery_count,
            enqueued_time=lease.enqueued_time,
            locked_until=_utc(locked_until),
        )

    # --- inspection --------------------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        with self._connection() as db:
            rows = db.execute("SELECT * FROM dead_letters ORDER BY seq").fetchall()
        return [
            DeadLetter(
                message=_message_from_row(row),
                reason=row["reason"],
                description=row["description"],
                delivery_count=row["delivery_count"],
                enqueued_time=_utc(row["enqueued_at"]),
                dead_lettered_time=_utc(row["dead_lettered_at"]),
                source=DeadLetterSource(row["source"]),
                sequence_number=row["seq"],
            )
            for row in rows
        ]

    def remove_dead_letter(self, sequence_number: int) -> bool:
        """Deletes one dead letter for good; False when it is gone already."""
        with self._transaction() as db:
            deleted = db.execute("DELETE FROM dead_letters WHERE seq = ?", (sequence_number,)).rowcount
        return bool(deleted)

    def replay_dead_letter(self, sequence_number: int, message: QueueMessage) -> bool:
        """Puts `message` (the entry's copy, sent as any message is) on the queue and removes the entry in
        one transaction; False when the entry is gone already."""
        replayed = False

        def store(traced: QueueMessage) -> None:
            nonlocal replayed
            with self._transaction() as db:
                if not db.execute("DELETE FROM dead_letters WHERE seq = ?", (sequence_number,)).rowcount:
                    return
                if not self._insert_row(db, _Row.of(traced), self._clock()):
                    # Rolls the delete back: a copy dropped as a duplicate must not cost the entry.
                    raise QueueUnavailableError(f"message id {traced.message_id!r} was sent already")
                replayed = True

        send_traced(message, "local", store)
        return replayed

    def peek_all(self) -> list[QueuedMessage]:
        """Every message still in the queue, oldest first, without locking any."""
        now = self._clock()
        with self._connection() as db:
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages ORDER BY available_at, seq"  # noqa: S608
            ).fetchall()
        return [
            QueuedMessage(
                message=_message_from_row(row),
                sequence_number=row["seq"],
                delivery_count=row["delivery_count"],
                enqueued_time=_utc(row["available_at"]),
                locked=(row["locked_until"] or 0) > now,
                last_error=row["last_error"],
            )
            for row in rows
        ]

    def counts(self) -> QueueCounts:
        now = self._clock()
        with self._connection() as db:
            locked, scheduled, total = db.execute(
                "SELECT COALESCE(SUM(locked_until > ?), 0), COALESCE(SUM(available_at > ?), 0), COUNT(*) "
                "FROM messages",
                (now, now),
            ).fetchone()
            (dead,) = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        return QueueCounts(
            active=total - locked - scheduled, locked=locked, scheduled=scheduled, dead_lettered=dead
        )


class LocalDeadLetters:
    """The operator's view of the local queue's dead letters, as `ServiceBusDeadLetters` is of Azure's."""

    def __init__(self, queue: LocalQueue) -> None:
        self._queue = queue

    def list(self, *, limit: int | None = None) -> list[DeadLetterEntry]:
        # Parking first, as the Service Bus adapter lists its two queues.
        letters = sorted(self._queue.dead_letters(), key=lambda d: d.source is not DeadLetterSource.PARKING)
        return [to_entry(letter) for letter in letters[:limit]]

    def replay(self, entry: DeadLetterEntry, message: QueueMessage) -> bool:
        return self._queue.replay_dead_letter(entry.sequence_number, message)

    def discard(self, entry: DeadLetterEntry) -> bool:
        return self._queue.remove_dead_letter(entry.sequence_number)


def to_entry(letter: DeadLetter) -> DeadLetterEntry:
    message = letter.message
    properties = message.application_properties
    parked = letter.source is DeadLetterSource.PARKING
    deliveries, first_enqueued = (
        parked_history(properties) if parked else (letter.delivery_count, letter.enqueued_time)
    )
    return DeadLetterEntry(
        source=letter.source,
        sequence_number=letter.sequence_number,
        message_id=message.message_id,
        session_id=message.session_id,
        reason=letter.reason,
        description=letter.description,
        body=message.body,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        application_properties=properties,
        delivery_count=deliveries,
        first_enqueued_at=first_enqueued,
        dead_lettered_at=letter.dead_lettered_time,
    )


def register_local_queue() -> None:
    """Makes `QUEUE_BACKEND=local` send to this queue at `LOCAL_QUEUE_PATH` (the dev host and test stacks),
    and show its dead letters to an operator."""
    register_queue_backend("local", _from_settings)
    register_dead_letter_backend("local", _dead_letters_from_settings)


def _from_settings(settings: Settings, credential: object = None) -> LocalQueue:
    # The local queue is a file: it never signs in, so the credential source is not used.
    return LocalQueue(settings.local_queue_path)


def _dead_letters_from_settings(settings: Settings, credential: object = None) -> LocalDeadLetters:
    return LocalDeadLetters(_from_settings(settings))
