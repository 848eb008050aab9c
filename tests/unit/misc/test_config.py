"""Configuration precedence: defaults < TOML file < environment < flags; bad values are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeport.config import SETTINGS, load, parse_listen
from homeport.errors import ConfigError


def test_defaults() -> None:
    cfg = load(environ={})
    assert cfg.data_dir == Path("homeport-data")
    assert cfg.listen == ("127.0.0.1", 5232)


def test_precedence(tmp_path: Path) -> None:
    f = tmp_path / "homeport.toml"
    f.write_text(
        '[server]\ndata = "/from/file"\nlisten = "127.0.0.1:1111"\n'
        "[limits]\nmax_object_size = 1000\n"
    )
    cfg = load(f, environ={"HOMEPORT_SERVER_LISTEN": "127.0.0.1:2222"})
    assert cfg.data_dir == Path("/from/file")
    assert cfg.listen == ("127.0.0.1", 2222)
    assert cfg.get("limits", "max_object_size") == 1000
    cfg = load(f, {("server", "data"): "/from/flag"}, environ={"HOMEPORT_SERVER_DATA": "/env"})
    assert cfg.data_dir == Path("/from/flag")


def test_config_file_from_environment(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[server]\ndata = "/x"\n')
    assert load(environ={"HOMEPORT_CONFIG": str(f)}).data_dir == Path("/x")


@pytest.mark.parametrize(
    "text",
    [
        "[server]\nnope = 1\n",
        "[server\n",
        '[limits]\nmax_object_size = "big"\n',
        "server = 3\n",
        "[limits]\nmax_object_size = true\n",
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError):
        load(f, environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "absent.toml", environ={})


def test_bad_environment_value() -> None:
    with pytest.raises(ConfigError, match="HOMEPORT_LIMITS_MAX_OBJECT_SIZE"):
        load(environ={"HOMEPORT_LIMITS_MAX_OBJECT_SIZE": "lots"})


@pytest.mark.parametrize("value", ["nope", "127.0.0.1", "127.0.0.1:0", "h:99999", ":x"])
def test_bad_listen(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(value)


def test_ipv6_listen() -> None:
    assert parse_listen("[::1]:8080") == ("::1", 8080)


def test_every_setting_has_an_env_name() -> None:
    envs = [s.env for s in SETTINGS]
    assert len(envs) == len(set(envs))
