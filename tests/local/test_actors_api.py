"""Actors as the spec lists them: pages of Actors, secrets kept out of every answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from apify_magic.local.registry import SHIPPED_ACTORS


def _actor(root: Path, name: str, env: dict[str, str]) -> None:
    (root / name / ".actor").mkdir(parents=True)
    (root / name / ".actor" / "actor.json").write_text(json.dumps(
        {"actorSpecification": 1, "name": name, "version": "0.1",
         "environmentVariables": env}))
    (root / name / "main.py").write_text("print('hi')\n")


def test_actor_lists_page_and_sort(make_runtime: Any, tmp_path: Path) -> None:
    for name in ("a1", "a2", "a3"):
        _actor(tmp_path / "actors", name, {})
    runtime = make_runtime(actor_dirs=[tmp_path / "actors", SHIPPED_ACTORS])
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        everything = api.get("/actors").json()["data"]
        names = [a["name"] for a in everything["items"]]
        assert {"a1", "a2", "a3", "hello"} <= set(names)
        page = api.get("/acts", params={"offset": 1, "limit": 2}).json()["data"]
        assert [a["name"] for a in page["items"]] == names[1:3]
        assert (page["offset"], page["limit"], page["count"], page["total"]) == (
            1, 2, 2, everything["total"])
        backwards = api.get("/actors", params={"desc": 1}).json()["data"]
        assert [a["name"] for a in backwards["items"]] == names[::-1]


def test_secret_environment_values_are_never_shown(make_runtime: Any, tmp_path: Path) -> None:
    _actor(tmp_path / "actors", "secretive", {"PLAIN": "visible", "KEY": "@myApiKey"})
    runtime = make_runtime(actor_dirs=[tmp_path / "actors"], token="t0ken")
    auth = {"Authorization": "Bearer t0ken"}
    with httpx.Client(base_url=f"{runtime.url}/v2") as api:
        actor = api.get("/actors/secretive", headers=auth).json()["data"]
        env = actor["versions"][0]["envVars"]
        assert {"name": "PLAIN", "value": "visible", "isSecret": False} in env
        assert {"name": "KEY", "isSecret": True} in env
        public = api.get("/actors/secretive/builds/default")  # answered without a token
        assert public.status_code == 200
        assert "visible" not in public.text and "myApiKey" not in public.text
        assert api.get("/actors/secretive").status_code == 401
