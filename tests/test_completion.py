"""Tab completion: `complete_line` never raises on any text, and offers the right kinds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from apify_magic.completion import Sources, complete_line

SOURCES = Sources(options=lambda magic: ["--memory", "--as", "--build", "--dry-run"],
                  actors=lambda: ["hello", "slow", "me~crawler"],
                  builds=lambda actor: ["latest", "0.1"] if actor == "hello" else [],
                  runs=lambda: ["RUNa1", "RUNb2"], settings=lambda: ["memory", "max_items"])


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.text(max_size=40) | st.tuples(
    st.sampled_from(["%apify_run ", "%%apify_run ", "x = %apify_run ", "%apify_attach ",
                     "%apify_config ", "%apify_log "]),
    st.lists(st.sampled_from(["hello", "--memory", "--as", "--build", "-", "--", "d", " ",
                              "\n", "1", "{}", "--bui"]), max_size=5)).map(
        lambda p: p[0] + " ".join(p[1])))
def test_any_text_completes_or_not_without_raising(before: str) -> None:
    found = complete_line(before, SOURCES)
    if found is not None:
        token, matches = found
        assert all(m.startswith(token) for m in matches)


def test_what_is_offered_where() -> None:
    assert complete_line("%apify_run he", SOURCES) == ("he", ["hello"])
    assert complete_line("x = %apify_run me", SOURCES) == ("me", ["me~crawler"])
    assert complete_line("%apify_run hello --dr", SOURCES) == ("--dr", ["--dry-run"])
    assert complete_line("%apify_run hello --as da", SOURCES) == ("da", ["dataframe"])
    assert complete_line("%apify_run hello --memory ", SOURCES)[1][:2] == ["128", "256"]
    assert complete_line("%apify_run hello --build ", SOURCES) == ("", ["latest", "0.1"])
    assert complete_line("%apify_attach R", SOURCES) == ("R", ["RUNa1", "RUNb2"])
    assert complete_line("%apify_config ma", SOURCES) == ("ma", ["max_items"])
    assert complete_line("%%apify_run hello\n{\"a", SOURCES) is None  # the body is INPUT
    assert complete_line("%apify_run hello --timeout ", SOURCES) is None
    assert complete_line("%apify_ru", SOURCES) is None
    assert complete_line("print(1)", SOURCES) is None
