"""Typed settings, read once at start.

Sources, highest precedence first: command-line flags, ``FLOWYARD_<SECTION>_<KEY>``
environment variables (server settings also as ``FLOWYARD_<KEY>``, e.g.
``FLOWYARD_DATABASE_URL``), the TOML file named by ``--config`` or ``FLOWYARD_CONFIG``,
then the defaults below. Every setting has a safe default. A value Flowyard cannot use
raises :class:`~server.errors.ConfigurationError` naming the key, so a typo in a
deployment fails at start with a message, not later with a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from server.durations import DurationError, parse_duration
from server.errors import ConfigurationError
from server.outbound.policy import parse_rules

ENV_PREFIX = "FLOWYARD_"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the process serves: address, database, worker pool."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on"})
    port: int = field(default=8000, metadata={"help": "TCP port to listen on"})
    data_dir: str = field(default="./data", metadata={"help": "directory for the SQLite file"})
    database_url: str = field(
        default="",
        metadata={"help": "SQLAlchemy async URL; default: SQLite file flowyard.db in data_dir"},
    )
    max_workers: int = field(default=32, metadata={"help": "node runs at once in this process"})
    execution_timeout: str = field(
        default="24h", metadata={"help": "default time limit of an execution (duration)"}
    )
    shutdown_grace: str = field(
        default="30s", metadata={"help": "how long running nodes may finish on SIGTERM"}
    )
    log_level: str = field(default="info", metadata={"help": "debug, info, warning or error"})
    public_url: str = field(
        default="",
        metadata={
            "help": "URL people reach the server at (links in e-mails); default http://host:port"
        },
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'flowyard.db'}"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """Sizes that keep one bad input from taking the server down (SPEC §8)."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_nodes: int = 1000
    max_depth: int = 10
    max_expression_length: int = 10_000
    max_jsonpath_length: int = 2_000
    max_response_bytes: int = 10 * 1024 * 1024
    max_loop_iterations: int = 10_000
    max_scope_bytes: int = 16 * 1024 * 1024
    max_page_size: int = 200


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """A database that ``database`` nodes may use, by name."""

    url: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """An SMTP account that ``email`` nodes may send through, by name."""

    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "none"
    username: str = ""
    password: str = ""
    sender: str = "flowyard@localhost"
    timeout: str = "30s"


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    """Where ``api`` and ``webhook`` nodes may connect (SPEC §8)."""

    mode: Literal["default", "strict"] = "default"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TasksSettings:
    """What ``task`` nodes may run besides expressions."""

    allow_commands: bool = False
    #: absolute paths, or bare names meaning "that name resolved on the server's PATH"
    command_allowlist: tuple[str, ...] = ()
    handler_modules: tuple[str, ...] = ()
    #: how long a command may run unless its task sets ``timeout`` (a duration)
    command_timeout: str = "10m"
    #: bytes kept of a command's stdout, and of its stderr
    max_output_bytes: int = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Authentication and browser-facing security."""

    enabled: bool = True
    #: HS256 secret for JWT bearer tokens (at least 32 bytes); empty: HS256 not accepted
    jwt_secret: str = ""
    #: RS256 public key (PEM text or a file path); empty: RS256 not accepted
    jwt_public_key: str = ""
    #: when set, a JWT's ``aud`` claim must be this value
    jwt_audience: str = ""
    #: when set, a JWT's ``iss`` claim must be this value
    jwt_issuer: str = ""
    #: an admin API key (``fy_…``) that must exist at start (env FLOWYARD_BOOTSTRAP_ADMIN_KEY)
    bootstrap_admin_key: str = ""
    cors_origins: tuple[str, ...] = ()
    metrics_public: bool = False
    #: a dashboard session ends after this long without a request (a duration)
    session_idle_timeout: str = "30m"
    #: and this long after sign-in, however active it is (a duration)
    session_max_age: str = "12h"
    #: failed sign-ins in a row, within ``login_lockout``, that lock a username
    login_max_failures: int = 5
    #: how long a username stays locked after ``login_max_failures`` (a duration)
    login_lockout: str = "15m"
    #: sign-in attempts per minute per client address and per username (token bucket)
    login_rate_per_minute: int = 10
    #: attempts allowed at once before ``login_rate_per_minute`` applies
    login_rate_burst: int = 10


@dataclass(frozen=True, slots=True)
class TriggersSettings:
    """Cron and webhook triggers (docs/triggers.md)."""

    #: how often a process re-reads the registry for other processes' changes (a duration)
    sync_interval: str = "2s"
    #: a fire this much later than due while the server ran (a stalled process) counts
    #: as missed and follows the trigger's misfire policy (a duration)
    misfire_grace: str = "60s"
    #: webhook requests per minute per client address and per hook path (token bucket)
    hook_rate_per_minute: int = 600
    #: webhook requests allowed at once before ``hook_rate_per_minute`` applies
    hook_rate_burst: int = 100


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """The demo mode of ``flowyard demo`` (SPEC §10)."""

    enabled: bool = False
    #: port of the demo's SMTP sink on 127.0.0.1 (0, or a port in use: a free one)
    smtp_port: int = 8025


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, one section per concern (mirrors the TOML file)."""

    server: ServerSettings = field(default_factory=ServerSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    tasks: TasksSettings = field(default_factory=TasksSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    connections: Mapping[str, ConnectionSettings] = field(default_factory=dict)
    smtp: Mapping[str, SmtpSettings] = field(default_factory=dict)
    demo: DemoSettings = field(default_factory=DemoSettings)
    triggers: TriggersSettings = field(default_factory=TriggersSettings)


SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "limits": LimitsSettings,
    "outbound": OutboundSettings,
    "tasks": TasksSettings,
    "auth": AuthSettings,
    "demo": DemoSettings,
    "triggers": TriggersSettings,
}
NAMED_SECTIONS: dict[str, type[Any]] = {"connections": ConnectionSettings, "smtp": SmtpSettings}
#: Environment variables named by SPEC §8 outside the FLOWYARD_<SECTION>_<KEY> pattern.
ENV_ALIASES = {"FLOWYARD_BOOTSTRAP_ADMIN_KEY": "auth.bootstrap_admin_key"}
# TOML keys that are Python keywords or clash with builtins.
KEY_RENAMES = {"from": "sender"}


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Merge flags > environment > TOML file > defaults into one :class:`Settings`.

    ``flags`` maps dotted keys (``"server.port"``) to values already given on the
    command line; ``None`` values mean "not given".
    """
    env = dict(os.environ if environ is None else environ)
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    layers: dict[str, dict[str, Any]] = _read_toml(Path(path)) if path else {}
    for dotted, value in _environment_values(env).items():
        section, key = dotted.split(".", 1)
        layers.setdefault(section, {})[key] = value
    for dotted, value in (flags or {}).items():
        if value is not None:
            section, key = dotted.split(".", 1)
            layers.setdefault(section, {})[key] = value
    return _build(layers)


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError("config", f"file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError("config", f"{path} is not valid TOML: {error}") from None
    known = {*SECTIONS, *NAMED_SECTIONS}
    for section, value in document.items():
        if section not in known:
            raise ConfigurationError(section, f"unknown section; known: {', '.join(sorted(known))}")
        if not isinstance(value, dict):
            raise ConfigurationError(section, f"must be a table, e.g. [{section}]")
    return {name: dict(value) for name, value in document.items()}


def _environment_values(env: Mapping[str, str]) -> dict[str, str]:
    """Collect ``FLOWYARD_SECTION_KEY`` (and ``FLOWYARD_KEY`` for server keys)."""
    found: dict[str, str] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            for name in (f"{ENV_PREFIX}{section}_{f.name}".upper(),) + (
                (f"{ENV_PREFIX}{f.name}".upper(),) if section == "server" else ()
            ):
                if name in env:
                    found[f"{section}.{f.name}"] = env[name]
    for name, dotted in ENV_ALIASES.items():
        if name in env and dotted not in found:
            found[dotted] = env[name]
    return found


def _build(layers: Mapping[str, Any]) -> Settings:
    sections: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        sections[section] = _make(cls, layers.get(section, {}), section)
    for section, cls in NAMED_SECTIONS.items():
        entries = layers.get(section, {})
        named: dict[str, Any] = {}
        for name, values in entries.items():
            if not isinstance(values, dict):
                raise ConfigurationError(f"{section}.{name}", f"must be a table [{section}.{name}]")
            named[name] = _make(cls, values, f"{section}.{name}")
        sections[section] = named
    return Settings(**sections)


def _make(cls: type[Any], values: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = KEY_RENAMES.get(raw_key, raw_key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigurationError(f"{prefix}.{raw_key}", f"unknown setting; known: {known}")
        kwargs[key] = _coerce(value, hints[key], f"{prefix}.{raw_key}")
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigurationError(f"{prefix}.{missing[0]}", "is required")
    settings = cls(**kwargs)
    _check(settings, prefix)
    return settings


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigurationError(key, f"{value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(key, "must be a list of strings (or comma-separated text)")
        return tuple(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        }:
            return value.lower() in {"1", "true", "yes", "on"}
        raise ConfigurationError(key, f"{value!r} is not a boolean (use true or false)")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigurationError(key, f"{value!r} is not a whole number")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigurationError(key, f"{value!r} is not a whole number") from None
    if hint is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigurationError(key, f"{value!r} must be text")
        return str(value)
    if isinstance(hint, types.UnionType):  # pragma: no cover - no such settings yet
        return value
    return value


def _check(settings: Any, prefix: str) -> None:
    """Checks that go beyond the type of one value."""
    if isinstance(settings, ServerSettings):
        if not 0 <= settings.port <= 65535:
            raise ConfigurationError(
                f"{prefix}.port", f"{settings.port} is not a TCP port (0-65535)"
            )
        if settings.max_workers < 1:
            raise ConfigurationError(f"{prefix}.max_workers", "must be at least 1")
        for name in ("execution_timeout", "shutdown_grace"):
            try:
                parse_duration(getattr(settings, name))
            except DurationError as error:
                raise ConfigurationError(f"{prefix}.{name}", str(error)) from None
        if settings.log_level.lower() not in {"debug", "info", "warning", "error"}:
            raise ConfigurationError(f"{prefix}.log_level", "use debug, info, warning or error")
        if settings.public_url and not settings.public_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"{prefix}.public_url", "use an http(s) URL such as https://flowyard.example.com"
            )
        url = settings.database_url
        if url and not url.startswith(
            ("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql+psycopg://")
        ):
            raise ConfigurationError(
                f"{prefix}.database_url",
                "use an async SQLAlchemy URL: sqlite+aiosqlite:///path.db or "
                "postgresql+asyncpg://user@host/db",
            )
    if isinstance(settings, OutboundSettings):
        parse_rules(settings.allow, f"{prefix}.allow")  # a bad entry names its key now
        parse_rules(settings.deny, f"{prefix}.deny")
    if isinstance(settings, LimitsSettings):
        for f in dataclasses.fields(settings):
            if getattr(settings, f.name) < 1:
                raise ConfigurationError(f"{prefix}.{f.name}", "must be at least 1")
    if isinstance(settings, TasksSettings):
        _check_tasks(settings, prefix)
    if isinstance(settings, AuthSettings):
        _check_sign_in(settings, prefix)
    if isinstance(settings, TriggersSettings):
        _check_triggers(settings, prefix)


def _check_sign_in(settings: AuthSettings, prefix: str) -> None:
    """Dashboard sign-in settings (sessions, lock-out, rate limit) and CORS origins."""
    for name in ("session_idle_timeout", "session_max_age", "login_lockout"):
        try:
            if parse_duration(getattr(settings, name)) <= 0:
                raise DurationError("must be more than 0 seconds")
        except DurationError as error:
            raise ConfigurationError(f"{prefix}.{name}", str(error)) from None
    for name in ("login_max_failures", "login_rate_per_minute", "login_rate_burst"):
        if getattr(settings, name) < 1:
            raise ConfigurationError(f"{prefix}.{name}", "must be at least 1")
    for origin in settings.cors_origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigurationError(
                f"{prefix}.cors_origins",
                f"{origin[:100]!r} is not an origin: write scheme://host[:port] with no "
                "path or trailing slash (https://ops.example.com), or * for any origin",
            )


#: A browser origin: scheme, host, optional port; nothing else.
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.\-]+(?::\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::\d{1,5})?"
)


def _check_triggers(settings: TriggersSettings, prefix: str) -> None:
    for name in ("sync_interval", "misfire_grace"):
        try:
            if parse_duration(getattr(settings, name)) <= 0:
                raise DurationError("must be more than 0 seconds")
        except DurationError as error:
            raise ConfigurationError(f"{prefix}.{name}", str(error)) from None
    for name in ("hook_rate_per_minute", "hook_rate_burst"):
        if getattr(settings, name) < 1:
            raise ConfigurationError(f"{prefix}.{name}", "must be at least 1")


def _check_tasks(settings: TasksSettings, prefix: str) -> None:
    try:
        if parse_duration(settings.command_timeout) <= 0:
            raise DurationError("must be more than 0 seconds")
    except DurationError as error:
        raise ConfigurationError(f"{prefix}.command_timeout", str(error)) from None
    if settings.max_output_bytes < 1:
        raise ConfigurationError(f"{prefix}.max_output_bytes", "must be at least 1")
    for entry in settings.command_allowlist:
        if not entry or ("/" in entry and not entry.startswith("/")):
            raise ConfigurationError(
                f"{prefix}.command_allowlist",
                f"{entry!r} is neither an absolute path nor a bare program name",
            )


def settings_help() -> list[tuple[str, str, str]]:
    """(flag-style key, default, help) for every server setting, for ``--help`` texts."""
    rows = []
    for f in dataclasses.fields(ServerSettings):
        default = f.default if f.default is not dataclasses.MISSING else ""
        rows.append((f.name, str(default), str(f.metadata.get("help", ""))))
    return rows
