"""Named database connections for ``database`` nodes: one statement, one transaction.

Each ``[connections.NAME]`` setting becomes an async SQLAlchemy engine, created the first
time a node uses it and disposed in :meth:`Databases.aclose`. URLs may be written in
SQLAlchemy form or plain: ``sqlite:///file.db`` runs on aiosqlite, ``postgresql://…``
(or ``postgres://``, ``postgresql+psycopg2://``) on psycopg's async driver;
``postgresql+asyncpg://`` and other async SQLAlchemy URLs are used as given.

Values never become SQL text. :func:`parse_query` reads the statement with a small
tokenizer that skips quoted strings, quoted identifiers, dollar-quoted bodies and
comments: in ``?`` style each placeholder becomes a bound parameter, in ``:name`` style
the names are collected, and every other colon is escaped so SQLAlchemy cannot mistake
``'10:30'`` for a parameter. It also refuses a second statement after a ``;``.

Read-only connections are enforced by the database, not by guessing from the SQL: SQLite
files open with ``mode=ro`` (and ``PRAGMA query_only``), PostgreSQL transactions start
with ``SET TRANSACTION READ ONLY``. Errors from drivers are rewritten so that neither the
connection URL nor its password can reach a node's error, output or log.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.config import ConnectionSettings
from server.errors import ConfigurationError, FlowyardError

Fetch = Literal["all", "one", "none"]

DEFAULT_MAX_ROWS = 1000
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Characters of a driver's message kept in a node error.
MAX_MESSAGE = 2_000
#: Prefix of the bound parameters that ``?`` placeholders become.
POSITIONAL_PREFIX = "_p"

#: Plain or synchronous driver names → the async driver Flowyard uses for them.
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
#: PostgreSQL error classes worth another attempt: connection trouble, serialization
#: failures and deadlocks, resource shortage, server shutting down, lock not available.
RETRYABLE_SQLSTATES = ("08", "40", "53", "57P", "55P03")
READ_ONLY_SQLSTATE = "25006"
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://\S+")


# --- errors ---------------------------------------------------------------------------


class DatabaseError(FlowyardError):
    """The statement could not be run on the database connection."""

    status_code = 502
    code = "database_error"

    def __init__(
        self,
        message: str | None = None,
        *,
        retryable: bool = False,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.sqlstate = sqlstate


class UnknownConnection(DatabaseError):
    """No database connection is configured under that name."""

    status_code = 422
    code = "unknown_connection"


class QueryError(DatabaseError):
    """The query or its parameters cannot be run as written."""

    status_code = 422
    code = "invalid_query"


class ReadOnlyConnection(DatabaseError):
    """The connection is read-only and the statement tried to write."""

    status_code = 422
    code = "read_only_connection"


# --- the query tokenizer -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A statement ready for SQLAlchemy ``text()`` and what its placeholders need.

    ``text`` has ``?`` turned into ``:_p1, :_p2…`` (positional style) and every colon
    that is not a placeholder escaped; ``names`` are the ``:name`` placeholders in order
    of first use; ``statements`` counts the statements (more than one is refused).
    """

    text: str
    positional: int
    names: tuple[str, ...]
    statements: int
    first_keyword: str


_WORD_CHAR = re.compile(r"\w")
_NAME = re.compile(r"\w+")
_KEYWORD = re.compile(r"[A-Za-z_]+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_]\w*)?\$")


def parse_query(query: str, *, positional: bool = True) -> ParsedQuery:
    """Read ``query`` once, outside strings and comments only.

    ``positional`` converts ``?`` placeholders; without it a ``?`` stays as written
    (PostgreSQL's JSON operators use it).
    """
    out: list[str] = []
    names: list[str] = []
    count = statements = 0
    in_statement = False
    first_keyword = ""
    i, end = 0, len(query)
    while i < end:
        char = query[i]
        following = query[i + 1] if i + 1 < end else ""
        skipped = _skipped_end(query, i, char, following)
        if skipped is not None:
            # strings, identifiers and comments are copied with their colons escaped
            out.append(query[i:skipped].replace(":", "\\:"))
            in_statement = in_statement or char not in "-/"
            i = skipped
            continue
        if char == "?" and positional:
            count += 1
            out.append(f":{POSITIONAL_PREFIX}{count}")
            in_statement = True
            i += 1
        elif char == ":":
            i = _colon(query, i, out, names)
            in_statement = True
        elif char == ";":
            statements += in_statement
            in_statement = False
            out.append(char)
            i += 1
        else:
            if not char.isspace():
                in_statement = True
                if not first_keyword and statements == 0 and char.isalpha():
                    match = _KEYWORD.match(query, i)
                    first_keyword = match.group(0).upper() if match else ""
            out.append(char)
            i += 1
        if out and out[-1].startswith(":") and i < end and query[i] == ":":
            out.append(" ")  # `:x::int` → `:x ::int`, which SQLAlchemy binds
    statements += in_statement
    unique = tuple(dict.fromkeys(names))
    return ParsedQuery("".join(out), count, unique, statements, first_keyword)


def _skipped_end(query: str, i: int, char: str, following: str) -> int | None:
    """End of the string, identifier or comment starting at ``i``; ``None`` if none does."""
    if char == "-" and following == "-":
        newline = query.find("\n", i)
        return len(query) if newline < 0 else newline
    if char == "/" and following == "*":
        close = query.find("*/", i + 2)
        return len(query) if close < 0 else close + 2
    if char in "'\"`":
        escape_string = char == "'" and _is_escape_string(query, i)
        return _quoted_end(query, i, char, backslash=escape_string)
    if char == "$" and not (i and _WORD_CHAR.match(query[i - 1])):
        tag = _DOLLAR_TAG.match(query, i)
        if tag:
            close = query.find(tag.group(0), tag.end())
            return len(query) if close < 0 else close + len(tag.group(0))
    return None


def _quoted_end(query: str, start: int, quote_char: str, *, backslash: bool) -> int:
    j = start + 1
    while j < len(query):
        char = query[j]
        if backslash and char == "\\":
            j += 2
            continue
        if char == quote_char:
            if query.startswith(quote_char, j + 1):
                j += 2  # a doubled quote is part of the text
                continue
            return j + 1
        j += 1
    return len(query)


def _is_escape_string(query: str, i: int) -> bool:
    """PostgreSQL ``E'…'`` strings treat backslash as an escape."""
    return i > 0 and query[i - 1] in "eE" and not (i > 1 and _WORD_CHAR.match(query[i - 2]))


def _colon(query: str, i: int, out: list[str], names: list[str]) -> int:
    """Handle a colon in code: a ``::`` cast, a ``:name`` placeholder, or plain text."""
    if query.startswith("::", i):
        out.append("::")
        return i + 2
    previous = query[i - 1] if i else ""
    name = _NAME.match(query, i + 1)
    if name and not (previous == "\\" or _WORD_CHAR.match(previous or " ")):
        names.append(name.group(0))
        out.append(f":{name.group(0)}")
        return name.end()
    out.append("\\:")  # e.g. an array slice `a[1:n]`: text, never a parameter
    return i + 1


def bind_parameters(
    query: str, params: Sequence[Any] | Mapping[str, Any] | None
) -> tuple[ParsedQuery, dict[str, Any]]:
    """The parsed statement and the values for its placeholders; :class:`QueryError`
    when the placeholders and ``params`` do not match."""
    if params is not None and not isinstance(params, list | tuple | dict):
        raise QueryError(
            "'params' must be a list (for ? placeholders) or an object (for :name "
            f"placeholders), not {type(params).__name__}"
        )
    named = isinstance(params, dict)
    parsed = parse_query(query, positional=not named)
    if parsed.statements > 1:
        raise QueryError(
            f"the query holds {parsed.statements} statements; a database node runs exactly "
            "one (remove the text after the ';' or use one node per statement)"
        )
    if parsed.statements == 0:
        raise QueryError("the query is empty (only whitespace or comments)")
    if isinstance(params, dict):
        missing = [name for name in parsed.names if name not in params]
        if missing:
            listed = ", ".join(f":{name}" for name in missing)
            raise QueryError(
                f"no value for {listed}: add {'it' if len(missing) == 1 else 'them'} to "
                "'params' (an object keyed by placeholder name)"
            )
        return parsed, {name: _bindable(params[name]) for name in parsed.names}
    values = list(params or [])
    if parsed.names:
        listed = ", ".join(f":{name}" for name in parsed.names)
        raise QueryError(
            f"the query uses named placeholders ({listed}); give 'params' as an object, e.g. "
            f'{{"{parsed.names[0]}": …}}'
        )
    if parsed.positional != len(values):
        raise QueryError(
            f"the query has {parsed.positional} ? placeholder(s) but 'params' gives "
            f"{len(values)} value(s)"
        )
    bound = {f"{POSITIONAL_PREFIX}{n}": _bindable(v) for n, v in enumerate(values, 1)}
    return parsed, bound


def _bindable(value: Any) -> Any:
    """JSON lists and objects are bound as JSON text; scalars as they are."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementResult:
    """What one statement gave: rows (when it returns rows) or a count."""

    returns_rows: bool
    rows: list[dict[str, Any]]
    truncated: bool
    row_count: int | None
    last_insert_id: int | None


def jsonable(value: Any) -> Any:
    """A database value as JSON data.

    Decimals become int (whole) or float; dates and times ISO-8601 text; intervals
    seconds; bytes base64 text; UUIDs text; NaN and infinities text; JSON and arrays
    recursively; anything else its text.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(item) for item in value]
    return str(value)


def column_names(keys: Iterable[str]) -> list[str]:
    """Result column names, made unique (``id``, ``id_2``) so no value is lost."""
    seen: set[str] = set()
    names = []
    for key in keys:
        name, suffix = str(key), 2
        while name in seen:
            name = f"{key}_{suffix}"
            suffix += 1
        seen.add(name)
        names.append(name)
    return names


# --- connections ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Connection:
    name: str
    url: URL
    backend: str
    read_only: bool
    hidden: tuple[str, ...]  # texts that must never appear in an error


def connection_spec(name: str, settings: ConnectionSettings) -> _Connection:
    """Check a ``[connections.NAME]`` setting and work out its async URL."""
    key = f"connections.{name}.url"
    try:
        url = make_url(settings.url)
    except Exception:  # the parser's own message would repeat the URL
        raise ConfigurationError(
            key, "is not a database URL; write e.g. sqlite:///data/app.db or "
            "postgresql://user@host/db"
        ) from None  # fmt: skip
    driver = ASYNC_DRIVERS.get(url.drivername, url.drivername)
    url = url.set(drivername=driver)
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(
            key, f"unknown database kind {driver!r}; use sqlite:// or postgresql://"
        ) from None
    if not dialect.get_async_dialect_cls(url).is_async:
        raise ConfigurationError(
            key, f"{driver!r} is not an async driver; use sqlite:// or postgresql://"
        )
    backend = url.get_backend_name()
    if backend == "sqlite" and settings.read_only:
        url = _sqlite_read_only(url, key)
    hidden = {settings.url, url.render_as_string(hide_password=False)}
    if url.password:
        hidden.update({str(url.password), quote(str(url.password), safe="")})
    if backend == "sqlite" and url.database:
        hidden.add(url.database)
        hidden.add(make_url(settings.url).database or url.database)
    return _Connection(name, url, backend, settings.read_only, tuple(h for h in hidden if h))


def _sqlite_read_only(url: URL, key: str) -> URL:
    """The URL that opens the SQLite file with ``mode=ro`` (a URI filename)."""
    database = url.database or ""
    if database in ("", ":memory:"):
        raise ConfigurationError(key, "a read-only SQLite connection needs a database file")
    if not database.startswith("file:"):
        database = f"file:{quote(os.path.abspath(database), safe='/')}"
    return url.set(database=database).update_query_dict({"mode": "ro", "uri": "true"})


def _create_engine(spec: _Connection) -> AsyncEngine:
    if spec.backend != "sqlite":
        return create_async_engine(spec.url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    engine = create_async_engine(spec.url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    begin = "BEGIN" if spec.read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling runs SELECTs outside the transaction;
        # the "begin" event below starts every transaction explicitly instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if spec.read_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Databases:
    """``services["databases"]``: runs one statement on a named connection."""

    def __init__(self, connections: Mapping[str, ConnectionSettings]) -> None:
        self._specs = {name: connection_spec(name, s) for name, s in connections.items()}
        self._engines: dict[str, AsyncEngine] = {}

    def names(self) -> list[str]:
        return sorted(self._specs)

    async def execute(
        self,
        connection: str,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        fetch: Fetch = "all",
    ) -> StatementResult:
        """Run ``query`` with ``params`` bound, in one transaction, and return its result.

        Raises :class:`DatabaseError` (``retryable`` says whether another attempt may
        succeed), :class:`QueryError`, :class:`ReadOnlyConnection` or
        :class:`UnknownConnection`.
        """
        spec = self._spec(connection)
        parsed, values = bind_parameters(query, params)
        statement = text(parsed.text)
        if parsed.first_keyword == "SELECT":
            # a server-side cursor, so only the rows kept are fetched (other statements
            # keep the plain cursor: it knows lastrowid and row counts)
            statement = statement.execution_options(stream_results=True)
        engine = self._engines.get(connection)
        if engine is None:
            try:
                engine = _create_engine(spec)
            except ImportError as error:
                raise DatabaseError(
                    f"database connection {connection!r}: its driver is not installed "
                    f"({error.name or error}); for PostgreSQL install flowyard[postgres]"
                ) from None
            self._engines[connection] = engine

        def work(conn: Connection) -> StatementResult:
            if spec.read_only and spec.backend == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            result = conn.execute(statement, values)
            try:
                return _read_result(result, parsed, max_rows, fetch)
            finally:
                result.close()

        try:
            async with engine.connect() as conn, conn.begin():
                return await conn.run_sync(work)
        except DatabaseError:
            raise
        except Exception as error:  # every driver error is reported, masked, as a node failure
            raise _translate(error, spec) from None

    async def aclose(self) -> None:
        engines, self._engines = self._engines, {}
        for engine in engines.values():
            await engine.dispose()

    def _spec(self, connection: str) -> _Connection:
        try:
            return self._specs[connection]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownConnection(
                f"database connection {connection!r} is not configured (configured: {known}); "
                f"add [connections.{connection}] to the server configuration"
            ) from None


def _read_result(result: Any, parsed: ParsedQuery, max_rows: int, fetch: Fetch) -> StatementResult:
    if result.returns_rows and fetch != "none":
        limit = 1 if fetch == "one" else max(1, max_rows)
        keys = column_names(result.keys())
        fetched = result.fetchmany(limit + 1)
        rows = [dict(zip(keys, map(jsonable, row), strict=True)) for row in fetched[:limit]]
        truncated = fetch == "all" and len(fetched) > limit
        return StatementResult(True, rows, truncated, len(rows), None)
    count = result.rowcount if isinstance(result.rowcount, int) else -1
    last_id = None
    if parsed.first_keyword in ("INSERT", "REPLACE") and count > 0:
        try:
            raw = result.lastrowid
        except (SQLAlchemyError, AttributeError, NotImplementedError):
            raw = None
        last_id = raw if isinstance(raw, int) and raw > 0 else None
    return StatementResult(False, [], False, count if count >= 0 else None, last_id)


def _translate(error: BaseException, spec: _Connection) -> DatabaseError:
    """A driver error as a :class:`DatabaseError` whose message hides the URL."""
    where = f"database connection {spec.name!r}"
    if not isinstance(error, SQLAlchemyError):
        detail = mask(f"{type(error).__name__}: {error}", spec.hidden)
        retryable = isinstance(error, OSError)  # refused, unreachable, timed out
        return DatabaseError(f"{where}: {detail}", retryable=retryable)
    original = error.orig if isinstance(error, DBAPIError) else None
    detail = mask(_describe(original if original is not None else error), spec.hidden)
    sqlstate = _sqlstate(original)
    lowered = detail.lower()
    if sqlstate == READ_ONLY_SQLSTATE or "readonly database" in lowered:
        return ReadOnlyConnection(
            f"{where} is read-only and the statement tried to write; use a writable "
            f"connection for it (database said: {detail})",
            sqlstate=sqlstate,
        )
    retryable = bool(
        (isinstance(error, DBAPIError) and error.connection_invalidated)
        or (sqlstate is not None and sqlstate.startswith(RETRYABLE_SQLSTATES))
        or (spec.backend == "sqlite" and ("database is locked" in lowered or "busy" in lowered))
        or (spec.backend != "sqlite" and sqlstate is None and _is_operational(error))
    )
    state = f" [SQLSTATE {sqlstate}]" if sqlstate else ""
    return DatabaseError(f"{where}: {detail}{state}", retryable=retryable, sqlstate=sqlstate)


def _describe(error: BaseException) -> str:
    message = str(error).strip() or type(error).__name__
    # SQLAlchemy appends the SQL, the parameters and a link; the node knows its query.
    message = message.split("\n[SQL:", 1)[0].split("\n(Background on this error", 1)[0]
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "…"
    return message


def _sqlstate(original: BaseException | None) -> str | None:
    for candidate in (original, getattr(original, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str) and state:
            return state
    return None


def _is_operational(error: BaseException) -> bool:
    return isinstance(error, OperationalError | InterfaceError)


def mask(message: str, hidden: Iterable[str]) -> str:
    """``message`` with every hidden text and anything shaped like a URL replaced."""
    for secret in sorted(hidden, key=len, reverse=True):
        message = message.replace(secret, "***")
    return _URL_IN_TEXT.sub("<url hidden>", message)
