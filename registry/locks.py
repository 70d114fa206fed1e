"""The lock around a champion move's compare-and-set (registry/store.py): one writer at a time.

* Embedded profile (a SQLite store on this machine): a lock file under `lock_dir`, one per registry store and
  model (`FileRegistryLock`).
* Server profile (an `mlflow server` whose backend store is PostgreSQL): a PostgreSQL session advisory lock,
  which every host that promotes sees (`AdvisoryRegistryLock`), on the database `promote.lock_url` names (by
  default the server profile's backend store, `server.backend_store_uri`). Advisory lock keys are scoped to
  their database, so the key is derived from the model name and the database is the registry store: one lock per
  registry store and model, whatever URL each host reaches the tracking server by. A session lock dies with its
  connection: a promote killed while it holds the lock frees it at once (a lock file does too: the OS drops it).

Either says, when it times out, who holds it: the holder's host, user, command and process id (written beside
the lock file; for PostgreSQL, the holding session's `application_name`, set when it took the lock).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from filelock import FileLock, Timeout

from sotag.data.store import shown_url
from sotag.infra.store_errors import fault
from sotag.tagger.errors import SotagError

LOCK_DATABASE = "promotion lock database"


class LockTimeout(SotagError):
    """The lock was not free within the timeout; the message says who holds it."""


def holder_text(action: str = "") -> str:
    """`sotag promote alice@host-1 pid 4242 since 2026-12-07 06:01:02 UTC`: who takes the lock."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    command = f"sotag {action}" if action else "sotag " + " ".join(sys.argv[1:2])
    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{command.strip()} {user}@{socket.gethostname()} pid {os.getpid()} since {since}"


def advisory_key(model_name: str) -> int:
    """The advisory lock's 64-bit key (signed, as pg_advisory_lock takes it) for the model's champion moves."""
    digest = hashlib.sha256(f"sotag.promote|{model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class FileRegistryLock:
    """A lock file for this machine's promotions (the embedded profile)."""

    def __init__(self, lock_dir: Path, store_uri: str, model_name: str, timeout_s: float):
        digest = hashlib.sha256(f"{store_uri}|{model_name}".encode()).hexdigest()[:16]
        lock_dir.mkdir(parents=True, exist_ok=True)
        self.path = lock_dir / f"registry-{digest}.lock"
        self.holder_path = self.path.with_suffix(".holder")
        self.timeout_s = timeout_s
        self._lock = FileLock(str(self.path), timeout=timeout_s)

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def is_locked(self) -> bool:
        """Held by this process."""
        return self._lock.is_locked

    @contextmanager
    def hold(self, action: str) -> Iterator[None]:
        try:
            self._lock.acquire()
        except Timeout:
            try:
                holder = self.holder_path.read_text().strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise LockTimeout(
                f"another promote/rollback holds {self.path} for over {self.timeout_s:.0f} s (held by {holder})"
            ) from None
        try:
            with suppress(OSError):  # who holds it is a courtesy; the lock itself is held
                self.holder_path.write_text(holder_text(action) + "\n")
            yield
        finally:
            self._lock.release()


class AdvisoryRegistryLock:
    """A PostgreSQL session advisory lock on `url` (the server profile's backend store, or `promote.lock_url`)."""

    def __init__(self, url: str, model_name: str, timeout_s: float):
        self.url = url
        self.key = advisory_key(model_name)
        self.timeout_s = timeout_s
        self.is_locked = False  # held by this process

    @property
    def where(self) -> str:
        return f"the PostgreSQL advisory lock {self.key} on {shown_url(self.url)}"

    @contextmanager
    def hold(self, action: str) -> Iterator[None]:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            try:
                conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except sa.exc.SQLAlchemyError as exc:
                raise fault(LOCK_DATABASE, f"connecting to {shown_url(self.url)}", exc) from exc
            try:
                self._acquire(conn, action)
                self.is_locked = True
                try:
                    yield
                finally:
                    self.is_locked = False
                    # A connection gone is a session gone, and its lock with it.
                    with suppress(sa.exc.SQLAlchemyError):
                        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            finally:
                conn.close()
        finally:
            engine.dispose()

    def _acquire(self, conn: sa.Connection, action: str) -> None:
        try:
            # The holder's name, for a waiter's timeout message (pg_stat_activity.application_name: 63 bytes).
            conn.execute(sa.text("SELECT set_config('application_name', :n, false)"), {"n": holder_text(action)[:63]})
            conn.execute(sa.text(f"SET lock_timeout = '{max(1, int(self.timeout_s * 1000))}ms'"))
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        except sa.exc.OperationalError as exc:
            if getattr(getattr(exc, "orig", None), "pgcode", None) == "55P03":  # lock_not_available: timed out
                raise LockTimeout(
                    f"another promote/rollback holds {self.where} for over {self.timeout_s:.0f} s "
                    f"(held by {self.holder(conn)})"
                ) from None
            raise fault(LOCK_DATABASE, f"taking {self.where}", exc) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise fault(LOCK_DATABASE, f"taking {self.where}", exc) from exc

    def holder(self, conn: sa.Connection) -> str:
        """The session holding the key: its application name (sotag's holder text), address and pid."""
        query = sa.text(
            "SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.objsubid = 1"
        )
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        try:
            row = conn.execute(query, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}).first()
        except sa.exc.SQLAlchemyError:
            return "unknown"
        if row is None:
            return "nobody now: it was just released"
        pid, name, addr = row
        return f"{name or 'a session without a name'}; PostgreSQL backend pid {pid} from {addr or 'a local socket'}"
