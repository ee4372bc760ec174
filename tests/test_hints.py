"""Hints fit the target: on the local runtime no hint sends a person to Apify Console."""

from __future__ import annotations

from typing import Any

from recording import RecordingServer, error_reply, run

from apify_magic import errors
from apify_magic.session import local_words


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def test_every_hint_has_its_local_words() -> None:
    for cls in _subclasses(errors.ApifyMagicError):
        assert "Console" not in local_words(cls.hint), cls.__name__


def test_a_loopback_target_gets_the_local_words(shell: Any, server: RecordingServer) -> None:
    server.default = error_reply(402, "actor-memory-limit-exceeded", "Too much memory")
    err = run(shell, "%%apify_run me~actor\n{}").error_in_exec
    assert isinstance(err, errors.PaymentRequiredError)
    assert "Console" not in err.hint and "--memory-budget" in err.hint
    assert "Apify Console > Billing" in errors.PaymentRequiredError.hint  # the platform's
