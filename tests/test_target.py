"""Where a run goes and which token it carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apify_magic import errors, target
from apify_magic.target import PLATFORM_URL, resolve_target


def test_token_alone_means_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIFY_TOKEN", "tok")
    got = resolve_target()
    assert got.base_url == PLATFORM_URL
    assert got.token is not None and got.token.reveal() == "tok"
    assert got.label == "Apify platform"


def test_base_url_variables_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIFY_CLIENT_BASE_URL", "http://127.0.0.1:9/")
    assert resolve_target().base_url == "http://127.0.0.1:9"
    monkeypatch.setenv("APIFY_API_BASE_URL", "http://127.0.0.1:8")
    assert resolve_target().base_url == "http://127.0.0.1:8"
    assert resolve_target("http://localhost:7").base_url == "http://localhost:7"


def test_cli_login_file_gives_the_token(tmp_path: Path) -> None:
    auth = Path.home() / ".apify" / "auth.json"
    auth.parent.mkdir()
    auth.write_text(json.dumps({"username": "me", "secretsBackend": "keyring"}))
    assert target.find_token() is None  # the token lives in the keyring: not ours to read
    auth.write_text(json.dumps({"username": "me", "token": "from-cli"}))
    found = target.find_token()
    assert found is not None and found.reveal() == "from-cli"


def test_remote_base_url_without_token_prompts_or_stops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIFY_API_BASE_URL", "https://api.example.org")
    with pytest.raises(errors.AuthError, match="needs an Apify token"):
        resolve_target(prompt=lambda: None)
    got = resolve_target(prompt=lambda: "typed")
    assert got.token is not None and got.token.reveal() == "typed"
    # The typed token is remembered for this process, never written anywhere.
    assert resolve_target().token == got.token
    assert list(Path.home().iterdir()) == []


def test_nothing_configured_uses_the_local_runtime() -> None:
    got = resolve_target(local_runtime=lambda: "http://127.0.0.1:5555")
    assert got.is_local and got.token is None
    with pytest.raises(errors.AuthError, match="No Apify token"):
        resolve_target()
