"""Durable local state: the embedded moto endpoint's durable resources, kept in `LOCAL_STATE_DIR`.

Why this design (issue 15): moto runs inside the launcher process, so its backend objects can be read
directly. A WSGI middleware in front of moto notes which durable resources a request changed; a
snapshot thread writes each changed resource to its own file every `LOCAL_SNAPSHOT_SECONDS`
(write to a temp file, fsync, rename, fsync the directory), and the launcher restores the files into
the fresh backends at start, before any child runs. The other candidates lose on correctness or
start-up time: pickling moto's backends fails (an RLock in SQS); a request journal replays every
idle poll; a boto3 dump cannot read an SQS message without receiving it (receive count and
visibility change); DynamoDB Local costs a JVM and covers DynamoDB only.

What is durable (everything else is ephemeral: host rows, replies, host command queues):
- every DynamoDB table but hosts and replies: all items, in moto's own attribute-value JSON, put back
  through the table's `put_item`, so keys, conditional writes and TTL attributes behave as before
  (the tables themselves, with their TTL settings, are created by provisioning at every start).
  Item writes are journaled: the middleware notes the key of every item a write names, and a
  snapshot appends those items' current state (or their deletion) to the table's journal, so its
  cost follows what changed, not the table's size. A table file plus its journal of the same
  generation is the table; when the journal outgrows the table, the table file is rewritten as the
  next generation and the old journal dropped (a crash in between replays nothing stale: restore
  reads only the journal of the table file's generation; a torn last journal line is ignored).
  Table-level operations (create, update, PartiQL) rewrite the whole table;
- the events queue and its DLQ: each message with its body, message attributes, system attributes,
  sent timestamp, receive count, first-receive timestamp and visibility/delay deadlines (epoch ms),
  so a message in flight stays invisible until its deadline and the fan-out sees the same attempt
  number (`ApproximateReceiveCount`) as before;
- the media bucket: one file per object plus a manifest (key, metadata such as Content-Type, ETag).

Crash window: a change is on disk at most one snapshot interval plus one write after it was
acknowledged; SIGKILL of the launcher can lose only changes inside that window (measured by
tests/integration/test_local_state.py and bench/local_state.py). A clean stop (SIGTERM, Ctrl-C)
stops the children first, then writes a final snapshot: nothing is lost.

Layout of the directory (format 1): `dynamodb/<table>.json` and `dynamodb/<table>.<generation>.journal`,
`sqs/<queue>.json`,
`s3/<bucket>/manifest.json` and `s3/<bucket>/objects/<sha256 of key>`, plus a `lock` file held
(flock) by the running launcher so two launchers never share one directory.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("local_gateway.state")

FORMAT = 1
DEFAULT_STATE_DIR = ".data/local-state"
DEFAULT_SNAPSHOT_SECONDS = 0.5
JOURNAL_MIN_ENTRIES = 2000  # a table's journal is folded into its table file beyond max(this, table size)

# DynamoDB operations that change items or tables (X-Amz-Target: DynamoDB_20120810.<op>).
_DDB_WRITES = frozenset({
    "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement",
    "BatchExecuteStatement", "ExecuteTransaction", "CreateTable", "DeleteTable", "UpdateTable",
    "RestoreTableFromBackup", "RestoreTableToPointInTime", "ImportTable",
})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class StateDirBusy(RuntimeError):
    """Another launcher holds this state directory."""


class StateUnreadable(RuntimeError):
    """A state file could not be read back; the message names the directory and what to do."""


# -- which resources are durable ----------------------------------------------------------------------


@dataclass(frozen=True)
class Durable:
    tables_excluded: frozenset[str]
    queues: tuple[str, ...]
    buckets: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Any) -> Durable:
        return cls(
            tables_excluded=frozenset({settings.hosts_table_name, settings.replies_table_name}),
            queues=(settings.events_queue_name, settings.events_dlq_name),
            buckets=(settings.media_bucket_name,),
        )


# -- change tracking: a WSGI middleware in front of moto ----------------------------------------------


@dataclass
class Changes:
    tables: set[str] = field(default_factory=set)  # rewrite these whole
    all_tables: bool = False
    items: dict[str, list[dict]] = field(default_factory=dict)  # table -> items or keys a write named
    sqs: bool = False
    s3: bool = False

    def any(self) -> bool:
        return bool(self.tables) or self.all_tables or bool(self.items) or self.sqs or self.s3

    def merge(self, other: Changes) -> None:
        self.tables |= other.tables
        self.all_tables |= other.all_tables
        for table, named in other.items.items():
            self.items.setdefault(table, []).extend(named)
        self.sqs |= other.sqs
        self.s3 |= other.s3


class ChangeTracker:
    """Wraps moto's WSGI app; records, after each request completes, what it may have changed.

    Marking after completion matters: the snapshotter takes the marks, then reads the backends, so a
    request still running when the marks are taken marks again and is written by the next snapshot.
    """

    def __init__(self, app: Callable):
        self.app = app
        self._lock = threading.Lock()
        self._changes = Changes()
        self.requests = 0

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        method = environ.get("REQUEST_METHOD", "GET")
        tables: set[str] | None = set()
        items: dict[str, list[dict]] = {}
        sqs = s3 = False
        if target.startswith("DynamoDB_"):
            operation = target.split(".", 1)[-1]
            if operation in _DDB_WRITES:
                body = _read_body(environ)
                items = _items_of(operation, body)
                if not items:
                    tables = _tables_of(body)
        elif target.startswith("AmazonSQS."):
            sqs = True  # receives change receive counts and visibility too
        elif method not in _READ_METHODS:
            sqs = s3 = True  # S3 writes (PUT, POST form uploads, DELETE) or the SQS query protocol
        try:
            return self.app(environ, start_response)
        finally:
            with self._lock:
                self.requests += 1
                if tables is None:
                    self._changes.all_tables = True
                else:
                    self._changes.tables |= tables
                for table, named in items.items():
                    self._changes.items.setdefault(table, []).extend(named)
                self._changes.sqs |= sqs
                self._changes.s3 |= s3

    def take(self) -> Changes:
        with self._lock:
            taken, self._changes = self._changes, Changes()
        return taken

    def give_back(self, changes: Changes) -> None:
        """A snapshot failed: keep its marks for the next one."""
        with self._lock:
            self._changes.merge(changes)


def _read_body(environ: dict) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _items_of(operation: str, body: bytes) -> dict[str, list[dict]]:
    """Item writes: table -> the items (PutItem) or keys (UpdateItem, DeleteItem) they name, as sent.
    Empty for anything else (those rewrite whole tables)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return {}
    named: dict[str, list[dict]] = {}

    def add(table: Any, value: Any) -> bool:
        if not isinstance(table, str) or not isinstance(value, dict):
            return False
        named.setdefault(table, []).append(value)
        return True

    if operation == "PutItem":
        ok = add(request.get("TableName"), request.get("Item"))
    elif operation in ("UpdateItem", "DeleteItem"):
        ok = add(request.get("TableName"), request.get("Key"))
    elif operation == "BatchWriteItem":
        ok = True
        for table, writes in (request.get("RequestItems") or {}).items():
            for write in writes or []:
                put, delete = (write or {}).get("PutRequest"), (write or {}).get("DeleteRequest")
                ok &= add(table, (put or {}).get("Item")) if put else add(table, (delete or {}).get("Key"))
    elif operation == "TransactWriteItems":
        ok = True
        for action in request.get("TransactItems") or []:
            for kind, part in (action or {}).items():
                if kind == "ConditionCheck":
                    continue
                part = part or {}
                ok &= add(part.get("TableName"), part.get("Item") if kind == "Put" else part.get("Key"))
    else:
        return {}
    return named if ok else {}


def _tables_of(body: bytes) -> set[str] | None:
    """Table names a DynamoDB write names; None when unknown (then every table counts as changed)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    names: set[str] = set()
    if isinstance(request.get("TableName"), str):
        names.add(request["TableName"])
    if isinstance(request.get("RequestItems"), dict):
        names.update(request["RequestItems"])
    for action in request.get("TransactItems") or []:
        for part in (action or {}).values():
            if isinstance(part, dict) and isinstance(part.get("TableName"), str):
                names.add(part["TableName"])
    if not names and ("Statement" in request or "Statements" in request or "TransactStatements" in request):
        return None  # PartiQL: the table is inside the statement
    return names or None


# -- moto's backends ------------------------------------------------------------------------------------


class Backends:
    """The moto backends of one account and region, read and written in-process."""

    def __init__(self, region: str, account_id: str | None = None):
        from moto.core import DEFAULT_ACCOUNT_ID

        self.region = region
        self.account_id = account_id or DEFAULT_ACCOUNT_ID

    @property
    def dynamodb(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self.account_id][self.region]

    @property
    def sqs(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account_id][self.region]

    @property
    def s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account_id]["global"]

    def table_names(self) -> list[str]:
        return list(self.dynamodb.tables)

    def table_items(self, name: str) -> list[dict]:
        """Every item of a table as DynamoDB attribute-value JSON (moto's own serialization)."""
        table = self.dynamodb.get_table(name)
        for _ in range(20):  # a request mutating an item while we read it: read again
            try:
                return [_jsonable(item.to_json()["Attributes"]) for item in list(table.all_items())]
            except RuntimeError:
                time.sleep(0.001)
        raise RuntimeError(f"table {name} kept changing while being read")

    def queue(self, name: str) -> Any:
        return self.sqs.get_queue(name)

    def bucket(self, name: str) -> Any:
        return self.s3.get_bucket(name)


def _message_json(message: Any) -> dict:
    return {
        "id": message.id, "body": message.body,
        "message_attributes": _jsonable(message.message_attributes),
        "system_attributes": _jsonable(message.system_attributes),
        "sender_id": message.sender_id, "sent_timestamp": message.sent_timestamp,
        "first_receive_timestamp": message.approximate_first_receive_timestamp,
        "receive_count": message.approximate_receive_count,
        "deduplication_id": message.deduplication_id, "group_id": message.group_id,
        "sequence_number": message.sequence_number,
        "visible_at": message.visible_at, "delayed_until": message.delayed_until,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


# -- the state directory --------------------------------------------------------------------------------


def _private_dirs(path: Path) -> None:
    """`path` and its missing parents, each created 0700 (Path.mkdir(parents=True) gives the parents
    it creates the default mode, 0755 under the usual umask)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write temp + fsync + rename + fsync the directory: the file is either the old or the new one."""
    _private_dirs(path.parent)
    temp = path.with_name(f".{path.name}.tmp")
    # 0600: the state holds session tokens and webhook secrets.
    with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe_name(name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"unexpected resource name {name!r}")
    return name


@dataclass
class RestoreReport:
    tables: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    objects: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        items = sum(self.tables.values())
        messages = ", ".join(f"{name} {count}" for name, count in self.messages.items()) or "none"
        return (f"{items} items in {len(self.tables)} tables, queued messages: {messages}, "
                f"{sum(self.objects.values())} media objects, in {self.seconds * 1000:.0f} ms")


class LocalState:
    """One state directory: snapshot (write what changed) and restore (load everything)."""

    def __init__(self, root: str | Path, durable: Durable, backends: Backends):
        self.root = Path(root).resolve()
        self.durable = durable
        self.backends = backends
        self._lock_handle: Any = None
        self._write_lock = threading.Lock()
        self._queue_signatures: dict[str, Any] = {}
        self._manifests: dict[str, dict[str, dict]] = {}
        self._generations: dict[str, int] = {}  # table -> generation of its table file
        self._journal_lengths: dict[str, int] = {}  # table -> entries in its current journal
        self._table_sizes: dict[str, int] = {}
        self.snapshots = 0
        self.last_write_seconds = 0.0
        self.max_write_seconds = 0.0

    # -- directory ownership ----------------------------------------------------------------------

    def acquire(self) -> None:
        """Create the directory and hold its lock for the launcher's life (released when it exits)."""
        _private_dirs(self.root)
        handle = os.fdopen(os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StateDirBusy(f"{self.root} is in use by another running gateway") from None
        self._lock_handle = handle
        meta = self.root / "format.json"
        if meta.exists():
            found = json.loads(meta.read_text()).get("format")
            if found != FORMAT:
                raise RuntimeError(f"{self.root} holds state format {found}, this version reads {FORMAT}; "
                                   "start empty with --reset")
        else:
            _write_atomic(meta, json.dumps({"format": FORMAT}).encode())

    def release(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    @staticmethod
    def reset(root: str | Path) -> bool:
        """Delete a state directory (the `--reset` flag, `make reset`); True if there was one."""
        path = Path(root).resolve()
        if not path.exists():
            return False
        handle = open(path / "lock", "a+") if path.is_dir() else None
        try:
            if handle is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise StateDirBusy(f"{path} is in use by a running gateway; stop it first") from None
            shutil.rmtree(path)
        finally:
            if handle is not None:
                handle.close()
        return True

    # -- snapshot ---------------------------------------------------------------------------------

    def snapshot(self, changes: Changes) -> int:
        """Write every durable resource `changes` names; returns the number of files written."""
        with self._write_lock:
            started = time.perf_counter()
            written = 0
            names = set(self.backends.table_names() if changes.all_tables else changes.tables)
            for name in sorted(names):
                if self._durable_table(name):
                    written += self._write_table(name)
            for name, named in sorted(changes.items.items()):
                if name not in names and self._durable_table(name):
                    written += self._journal(name, named)
            if changes.sqs:
                for name in self.durable.queues:
                    written += self._write_queue(name)
            if changes.s3:
                for name in self.durable.buckets:
                    written += self._write_bucket(name)
            if written:
                self.snapshots += 1
                self.last_write_seconds = time.perf_counter() - started
                self.max_write_seconds = max(self.max_write_seconds, self.last_write_seconds)
            return written

    def snapshot_all(self) -> int:
        return self.snapshot(Changes(all_tables=True, sqs=True, s3=True))

    def _durable_table(self, name: str) -> bool:
        return name not in self.durable.tables_excluded and name in self.backends.dynamodb.tables

    def _table_path(self, name: str) -> Path:
        return self.root / "dynamodb" / f"{_safe_name(name)}.json"

    def _journal_path(self, name: str, generation: int) -> Path:
        return self.root / "dynamodb" / f"{_safe_name(name)}.{generation}.journal"

    def _write_table(self, name: str) -> int:
        """The whole table as the next generation; the previous generation's journal goes after."""
        items = self.backends.table_items(name)
        previous = self._generations.get(name, 0)
        generation = previous + 1
        document = {"format": FORMAT, "table": name, "generation": generation, "items": items}
        _write_atomic(self._table_path(name), json.dumps(document, separators=(",", ":")).encode())
        self._generations[name] = generation
        self._journal_lengths[name] = 0
        self._table_sizes[name] = len(items)
        for stale in self._table_path(name).parent.glob(f"{_safe_name(name)}.*.journal"):
            if stale.name != self._journal_path(name, generation).name:
                stale.unlink(missing_ok=True)
        return 1

    def _journal(self, name: str, named: list[dict]) -> int:
        """Append the current state of the items `named` (items or keys, as a write sent them)."""
        if name not in self._generations or not self._table_path(name).exists():
            return self._write_table(name)  # no base yet: start one
        table = self.backends.dynamodb.get_table(name)
        keys: dict[str, dict] = {}
        for value in named:
            key = {attr: value[attr] for attr in table.table_key_attrs if attr in value}
            if len(key) == len(table.table_key_attrs):
                keys[json.dumps(key, sort_keys=True)] = key
            else:
                return self._write_table(name)  # a key we cannot read: the whole table instead
        from moto.dynamodb.models.dynamo_type import DynamoType

        lines = []
        for key in keys.values():
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(hash_value, range_value)
            state = None if item is None else _jsonable(item.to_json()["Attributes"])
            lines.append(json.dumps({"key": _jsonable(key), "item": state}, separators=(",", ":")))
        generation = self._generations[name]
        path = self._journal_path(name, generation)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as handle:
            handle.write(("\n".join(lines) + "\n").encode())
            handle.flush()
            os.fsync(handle.fileno())
        self._journal_lengths[name] = self._journal_lengths.get(name, 0) + len(lines)
        if self._journal_lengths[name] > max(JOURNAL_MIN_ENTRIES, self._table_sizes.get(name, 0)):
            self._write_table(name)  # compact: the journal outgrew the table
        return 1

    def _write_queue(self, name: str) -> int:
        try:
            queue = self.backends.queue(name)
        except Exception:
            return 0
        messages = [_message_json(m) for m in list(queue._messages)]
        signature = [(m["id"], m["receive_count"], m["visible_at"], m["delayed_until"]) for m in messages]
        if self._queue_signatures.get(name) == signature:
            return 0  # only polled: nothing changed
        _write_atomic(self.root / "sqs" / f"{_safe_name(name)}.json",
                      json.dumps({"format": FORMAT, "queue": name, "messages": messages},
                                 separators=(",", ":")).encode())
        self._queue_signatures[name] = signature
        return 1

    def _bucket_dir(self, name: str) -> Path:
        return self.root / "s3" / _safe_name(name)

    def _write_bucket(self, name: str) -> int:
        try:
            bucket = self.backends.bucket(name)
        except Exception:
            return 0
        directory = self._bucket_dir(name)
        previous = self._manifests.get(name)
        if previous is None:
            previous = self._read_manifest(name)
        current: dict[str, dict] = {}
        written = 0
        for key_name, key in list(bucket.keys.items()):
            entry = {"file": hashlib.sha256(key_name.encode()).hexdigest(), "etag": key.etag,
                     "metadata": dict(key.metadata), "last_modified": key.last_modified.timestamp()}
            old = previous.get(key_name)
            if old is None or old["etag"] != entry["etag"] or old["metadata"] != entry["metadata"]:
                _write_atomic(directory / "objects" / entry["file"], key.value)
                written += 1
            current[key_name] = entry
        if current == previous:
            return 0
        _write_atomic(directory / "manifest.json",
                      json.dumps({"format": FORMAT, "bucket": name, "objects": current}).encode())
        for key_name, entry in previous.items():  # deleted objects: their files go after the manifest
            if key_name not in current:
                (directory / "objects" / entry["file"]).unlink(missing_ok=True)
        self._manifests[name] = current
        return written + 1

    def _read_manifest(self, name: str) -> dict[str, dict]:
        path = self._bucket_dir(name) / "manifest.json"
        if not path.exists():
            return {}
        return json.loads(path.read_bytes())["objects"]

    # -- restore ----------------------------------------------------------------------------------

    def restore(self) -> RestoreReport:
        """Load every durable resource into the (freshly provisioned) backends. A file that cannot be
        read raises StateUnreadable naming it (files are replaced atomically, so this means damage
        from outside, or a hand edit)."""
        try:
            return self._restore()
        except StateUnreadable:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateUnreadable(f"cannot restore the local state in {self.root}: {type(exc).__name__}: {exc}; "
                                  "fix or move the directory, or start empty with --reset") from exc

    def _restore(self) -> RestoreReport:
        started = time.perf_counter()
        report = RestoreReport()
        for path in sorted((self.root / "dynamodb").glob("*.json")):
            if path.name.startswith("."):
                continue
            document = json.loads(path.read_bytes())
            name = document["table"]
            if name in self.durable.tables_excluded or name not in self.backends.dynamodb.tables:
                log.warning("state: table %s is no longer provisioned; its %d items are not restored",
                            name, len(document["items"]))
                continue
            table = self.backends.dynamodb.get_table(name)
            for item in document["items"]:
                table.put_item(_from_jsonable(item))
            generation = int(document.get("generation", 1))
            replayed = self._replay(table, self._journal_path(name, generation))
            report.tables[name] = len(document["items"]) + replayed
            self._generations[name] = generation
            self._journal_lengths[name] = replayed
            self._table_sizes[name] = len(document["items"])
        for name in self.durable.queues:
            path = self.root / "sqs" / f"{name}.json"
            if path.exists():
                report.messages[name] = self._restore_queue(name, json.loads(path.read_bytes())["messages"])
        for name in self.durable.buckets:
            report.objects[name] = self._restore_bucket(name)
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _replay(table: Any, path: Path) -> int:
        """Apply a journal in order; a torn last line (crash mid-append) is ignored."""
        if not path.exists():
            return 0
        from moto.dynamodb.models.dynamo_type import DynamoType

        lines = path.read_bytes().split(b"\n")
        applied = 0
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                if number >= len(lines) - 2:  # the last record, cut short by a crash: never acknowledged
                    log.warning("state: ignoring a torn last journal record of %s", table.name)
                    break
                raise
            if entry["item"] is not None:
                table.put_item(_from_jsonable(entry["item"]))
            else:
                key = _from_jsonable(entry["key"])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                table.delete_item(DynamoType(key[table.hash_key_attr]), range_value)
            applied += 1
        return applied

    def _restore_queue(self, name: str, messages: list[dict]) -> int:
        from moto.core.utils import unix_time_millis
        from moto.sqs.models import Message

        queue = self.backends.queue(name)
        now = unix_time_millis()
        restored = []
        for data in messages:
            message = Message(data["id"], data["body"], _from_jsonable(data["system_attributes"]))
            message.message_attributes = _from_jsonable(data["message_attributes"])
            message.sender_id = data["sender_id"]
            message.sent_timestamp = data["sent_timestamp"]
            message.approximate_first_receive_timestamp = data["first_receive_timestamp"]
            message.approximate_receive_count = data["receive_count"]
            message.deduplication_id = data["deduplication_id"]
            message.group_id = data["group_id"]
            message.sequence_number = data["sequence_number"]
            message.visible_at = data["visible_at"]
            message.delayed_until = data["delayed_until"]
            if message.visible_at > now:  # in flight when the state was written: stays in flight
                message.receipt_handle = f"restored-{message.id}"
                queue.pending_messages.add(message)
            restored.append(message)
        with queue._messages_lock:
            queue._messages.extend(restored)
            queue._messages_lock.notify_all()
        self._queue_signatures[name] = [(m["id"], m["receive_count"], m["visible_at"], m["delayed_until"])
                                        for m in messages]
        return len(restored)

    def _restore_bucket(self, name: str) -> int:
        manifest = self._read_manifest(name)
        directory = self._bucket_dir(name) / "objects"
        restored: dict[str, dict] = {}
        for key_name, entry in manifest.items():
            path = directory / entry["file"]
            if not path.exists():
                log.warning("state: media object file missing for one key; skipped")
                continue
            key = self.backends.s3.put_object(name, key_name, path.read_bytes(), disable_notification=True)
            key.set_metadata(dict(entry["metadata"]), replace=True)
            restored[key_name] = {**entry, "etag": key.etag}
        self._manifests[name] = restored
        return len(restored)


class Snapshotter:
    """Every `interval` seconds, write what changed; `flush()` writes what is left (clean stop)."""

    def __init__(self, state: LocalState, tracker: ChangeTracker, interval: float):
        self.state = state
        self.tracker = tracker
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-snapshot", daemon=True)
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> int:
        changes = self.tracker.take()
        if not changes.any():
            return 0
        try:
            return self.state.snapshot(changes)
        except Exception as exc:  # disk full, permissions: keep the marks, say so, try again next time
            self.tracker.give_back(changes)
            self.failures += 1
            log.error("state: snapshot failed (%s: %s); retrying", type(exc).__name__, exc)
            return 0

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.flush()


def start_moto(port: int, ip: str = "127.0.0.1") -> tuple[Any, str, ChangeTracker]:
    """moto's threaded server with a ChangeTracker in front; returns (server, endpoint URL, tracker)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    holder: dict[str, ChangeTracker] = {}

    class TrackedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:  # ThreadedMotoServer's, with the tracker around the app
            holder["tracker"] = ChangeTracker(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, holder["tracker"], True,
                                       request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = TrackedMotoServer(ip_address=ip, port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    return server, f"http://{ip}:{bound}", holder["tracker"]
