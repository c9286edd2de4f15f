"""Settings: precedence flags > environment > TOML > defaults; bad values name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import load_settings
from server.errors import ConfigurationError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flowyard.toml"
    path.write_text(text)
    return path


def test_defaults_are_safe() -> None:
    settings = load_settings(environ={})
    assert settings.server.host == "127.0.0.1"
    assert settings.auth.enabled is True
    assert settings.tasks.allow_commands is False
    assert settings.outbound.mode == "default"
    assert settings.limits.max_body_bytes == 10 * 1024 * 1024
    assert settings.server.resolved_database_url.startswith("sqlite+aiosqlite:///")


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    config = write(tmp_path, "[server]\nport = 7000\nhost = '0.0.0.0'\nmax_workers = 4\n")
    env = {"FLOWYARD_SERVER_PORT": "7100", "FLOWYARD_HOST": "127.0.0.5"}
    settings = load_settings({"server.port": 7200}, environ=env, config_file=config)
    assert settings.server.port == 7200  # flag
    assert settings.server.host == "127.0.0.5"  # environment (short form for [server])
    assert settings.server.max_workers == 4  # file
    assert load_settings(environ=env, config_file=config).server.port == 7100


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = write(tmp_path, "[auth]\ncors_origins = ['https://a.example']\n")
    settings = load_settings(environ={"FLOWYARD_CONFIG": str(config)})
    assert settings.auth.cors_origins == ("https://a.example",)


def test_named_sections_and_renamed_keys(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "[connections.demo_db]\nurl = 'sqlite:///x.db'\nread_only = true\n"
        "[smtp.default]\nport = 8025\nfrom = 'robot@example.test'\n",
    )
    settings = load_settings(environ={}, config_file=config)
    assert settings.connections["demo_db"].read_only is True
    assert settings.smtp["default"].sender == "robot@example.test"


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("[server]\nport = 'eighty'\n", {}, "server.port"),
        ("[server]\nport = 70000\n", {}, "server.port"),
        ("[server]\nexecution_timeout = 'soon'\n", {}, "server.execution_timeout"),
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("[outbound]\nmode = 'open'\n", {}, "outbound.mode"),
        ("[nonsense]\nx = 1\n", {}, "nonsense"),
        ("", {"FLOWYARD_AUTH_ENABLED": "maybe"}, "auth.enabled"),
        ("", {"FLOWYARD_DATABASE_URL": "mysql://x"}, "server.database_url"),
        ("[connections.db]\nread_only = true\n", {}, "connections.db.url"),
        ("[limits]\nmax_nodes = 0\n", {}, "limits.max_nodes"),
    ],
)
def test_bad_value_names_its_key(tmp_path: Path, text: str, env: dict[str, str], key: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ=env, config_file=config)
    assert caught.value.key == key
    assert key in caught.value.message


def test_broken_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, "[server\nport=1")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(environ={}, config_file=config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(environ={}, config_file=tmp_path / "nope.toml")
