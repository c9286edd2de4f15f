"""The engine's single writer: every state change, committed before it is acknowledged.

Engine reads and writes run as small functions of a synchronous SQLAlchemy connection on
one dedicated thread. Whatever work is queued when the thread comes round is committed in
one transaction (group commit), so the per-node cost stays near the cost of the SQL
itself instead of an async driver's thread hand-offs (STACK.md measured 1.9 ms per
transaction through SQLAlchemy async on aiosqlite; a sync commit is ~0.2 ms and a group
of them shares it). A failing unit of work is retried alone, so it cannot fail the
others it was grouped with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url

from server.store.database import SQLITE_BUSY_TIMEOUT_MS

log = logging.getLogger("flowyard.journal")

T = TypeVar("T")
Work = Callable[[Connection], Any]
MAX_GROUP = 256


class Chain:
    """Units of work that build on each other (one execution's pipelined results).

    Once a unit of a chain has failed, the later units of that chain are refused
    without running, so what is committed of a chain is always a prefix of it: a node's
    result is never stored on top of a predecessor's result that was not.
    """

    __slots__ = ("broken",)

    def __init__(self) -> None:
        self.broken = False


class ChainBroken(RuntimeError):
    """A unit was refused because an earlier unit of its chain failed."""


@dataclass
class _Item:
    work: Work
    future: asyncio.Future[Any] | None
    loop: asyncio.AbstractEventLoop
    chain: Chain | None = None
    on_error: Callable[[BaseException], None] | None = None

    def apply(self, connection: Connection) -> Any:
        if self.chain is not None and self.chain.broken:
            raise ChainBroken("an earlier change of this execution failed to commit")
        return self.work(connection)


_STOP = object()


def sync_url(url: str) -> str:
    """The synchronous driver's URL for an async one (same database)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database backend {backend!r}")


def create_sync_engine(url: str) -> Engine:
    engine = create_engine(sync_url(url), pool_size=1, max_overflow=0)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
                "PRAGMA foreign_keys=ON",
            ):
                dbapi_connection.execute(pragma)

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # The journal may have begun the transaction on the driver connection already.
            if not _driver(connection).in_transaction:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Journal:
    """Runs units of work on the writer thread; ``await run(work)`` returns after commit."""

    def __init__(self, database_url: str) -> None:
        self._engine = create_sync_engine(database_url)
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._connection: Connection | None = None
        self.commits = 0
        self.units = 0

    @property
    def backend(self) -> str:
        return self._engine.dialect.name

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="flowyard-journal", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        self._engine.dispose()

    async def run(self, work: Callable[[Connection], T], *, chain: Chain | None = None) -> T:
        """Run ``work`` in a transaction; its result once the transaction is committed."""
        return await self.submit(work, chain=chain)

    def submit(
        self, work: Callable[[Connection], T], *, chain: Chain | None = None
    ) -> asyncio.Future[T]:
        """Queue ``work`` (ordered before every later unit); a future of its result,
        set once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Item(work, future, loop, chain))
        return future

    def post(
        self,
        work: Work,
        *,
        chain: Chain | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Queue ``work`` that nobody waits for: no future to settle, so no wake-up of
        the event loop when it commits. A failure is logged, and handed to ``on_error``
        on the loop."""
        self._queue.put(_Item(work, None, asyncio.get_running_loop(), chain, on_error))

    def _loop(self) -> None:
        try:
            self._serve()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group: list[_Item] = [first]  # type: ignore[list-item]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                group.append(item)  # type: ignore[arg-type]
            self._commit(group)
            if stop:
                return

    def _connected(self) -> Connection:
        """The writer's connection, held for the thread's life (no pool round trip)."""
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._connection = self._engine.connect()
        return self._connection

    def _commit(self, group: list[_Item]) -> None:
        try:
            connection = self._connected()
            if self.backend == "sqlite":
                results = self._sqlite_transaction(connection, group)
            else:
                with connection.begin():
                    results = [item.apply(connection) for item in group]
        except Exception:
            if self._connection is not None and self._connection.invalidated:
                self._connection.close()
                self._connection = None
            if len(group) == 1:
                item = group[0]
                if item.chain is not None:
                    item.chain.broken = True
                self._settle(item, error=_current_error())
                return
            for item in group:
                self._commit([item])
            return
        self.commits += 1
        self.units += len(group)
        for item, result in zip(group, results, strict=True):
            self._settle(item, result=result)

    @staticmethod
    def _sqlite_transaction(connection: Connection, group: list[_Item]) -> list[Any]:
        """BEGIN IMMEDIATE … COMMIT on the driver connection itself.

        The hot-path statements run on the driver's cursor (``server.store.runs``), so
        SQLAlchemy's transaction bookkeeping is only needed when a unit uses Core; it then
        joins the transaction already begun (see ``_on_begin``) and commits it.
        """
        raw = _driver(connection)
        raw.execute("BEGIN IMMEDIATE")
        try:
            results = [item.apply(connection) for item in group]
        except BaseException:
            if connection.in_transaction():
                connection.rollback()
            if raw.in_transaction:
                raw.rollback()
            raise
        if connection.in_transaction():
            connection.commit()
        if raw.in_transaction:
            raw.commit()
        return results

    def _settle(
        self, item: _Item, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        if item.future is None:
            if error is not None:
                log.error("journal work failed", exc_info=error, extra={"action": "journal.failed"})
                if item.on_error is not None:
                    with contextlib.suppress(RuntimeError):  # a closed loop
                        item.loop.call_soon_threadsafe(item.on_error, error)
            return
        future = item.future

        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            item.loop.call_soon_threadsafe(settle)


def _driver(connection: Connection) -> Any:
    """The DB-API connection under a SQLAlchemy connection (a ``sqlite3.Connection``)."""
    driver = connection.connection.driver_connection
    if driver is None:  # pragma: no cover - only after the connection was closed
        raise RuntimeError("the journal's connection is closed")
    return driver


def _current_error() -> BaseException:
    import sys

    error = sys.exc_info()[1]
    assert error is not None
    return error
