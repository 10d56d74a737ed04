"""Settings from a TOML config file and the environment (which wins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.settings import Settings, SettingsError

CONFIG = """
database_url = "postgresql://leadscore@db:5432/leadscore"

[server]
host = "0.0.0.0"
port = 9000
workers = 4
"""


def test_the_config_file_named_by_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "prod.toml"
    config.write_text(CONFIG)
    settings = Settings.from_env({"LEADSCORE_CONFIG": str(config)})
    assert settings == Settings("postgresql://leadscore@db:5432/leadscore", "0.0.0.0", 9000, 4)


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "prod.toml"
    config.write_text(CONFIG)
    settings = Settings.from_env({"LEADSCORE_CONFIG": str(config), "LEADSCORE_DATABASE_URL": "sqlite:///x.db",
                                  "LEADSCORE_PORT": "8080"})
    assert (settings.database_url, settings.port, settings.workers) == ("sqlite:///x.db", 8080, 4)


def test_leadscore_toml_in_the_working_folder_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "leadscore.toml").write_text('database_url = "sqlite:///here.db"\n')
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({}).database_url == "sqlite:///here.db"


def test_defaults_without_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'leadscore.db'}"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("databse_url = 'x'\n", {}, "unknown setting(s) in the config file: databse_url"),
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("database_url = \n", {}, "not a valid TOML file"),
        ("[server]\nport = 0\n", {}, "port must be at least 1"),
        ("", {"LEADSCORE_WORKERS": "many"}, "workers must be a whole number"),
        ("server = 3\n", {}, "[server] must be a table"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, environ: dict[str, str], message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({"LEADSCORE_CONFIG": str(config), **environ})


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        Settings.from_env({"LEADSCORE_CONFIG": str(tmp_path / "missing.toml")})
