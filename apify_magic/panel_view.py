"""What the panel draws, as HTML and text: the status chip, the one-line outcome, the
preview, and the style sheet that colours them from the frontend's theme.

Colours come only from JupyterLab's theme variables (`--jp-*`, which Notebook 7 shares):
a status colour is mixed 70/30 with the theme's main font colour, which pulls it towards
black on light themes and towards white on dark ones, so each status keeps its hue and
reads at WCAG AA (4.5:1) on the theme's background. Where a frontend has no such
variables, `currentColor` stands in: the text's own colour, never a hard-coded one.
"""

from __future__ import annotations

import html
import sys
from typing import Any

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED")
PREVIEW_CHARS = 2000
CSS = """
.apify-run-panel { border: 1px solid var(--jp-border-color2, currentColor);
  border-radius: 4px; padding: 1px 4px; }
.apify-line { align-items: center; overflow: hidden; }
.apify-line .widget-html, .apify-line .widget-html-content { height: auto;
  line-height: 20px; white-space: nowrap; }
.apify-message .widget-html-content { overflow: hidden; text-overflow: ellipsis; }
.apify-chip { display: inline-block; padding: 0 7px; border: 1px solid currentColor;
  border-radius: 9px; font-weight: 600; font-size: 11px; line-height: 16px;
  letter-spacing: .02em; white-space: nowrap;
  color: color-mix(in srgb, var(--apify-status, currentColor) 70%,
                   var(--jp-ui-font-color0, currentColor)); }
.apify-chip-ready { --apify-status: var(--jp-ui-font-color1, currentColor); }
.apify-chip-running { --apify-status: var(--jp-brand-color1, currentColor); }
.apify-chip-succeeded { --apify-status: var(--jp-success-color0, currentColor); }
.apify-chip-failed { --apify-status: var(--jp-error-color0, currentColor); }
.apify-chip-timed-out { --apify-status: var(--jp-warn-color0, currentColor); }
.apify-chip-aborted { --apify-status: var(--jp-ui-font-color2, currentColor); }
.apify-dim { color: var(--jp-ui-font-color2, currentColor); }
.apify-error { color: color-mix(in srgb, var(--jp-error-color0, currentColor) 70%,
                                var(--jp-ui-font-color0, currentColor)); }
.apify-log pre { max-height: 16em; overflow: auto; margin: 0; font-size: 11px; }
.apify-field-help { color: var(--jp-ui-font-color2, currentColor); font-size: 11px;
  margin: 0 0 4px 168px; line-height: 14px; }
.apify-outcome { font-family: var(--jp-ui-font-family, sans-serif); line-height: 20px; }
"""


def style_html() -> str:
    return f"<style>{CSS}</style>"


def chip_html(status: str) -> str:
    label = status.upper()
    return (f"<span class='apify-chip apify-chip-{html.escape(label.lower())}'>"
            f"{html.escape(label)}</span>")


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def summary(value: Any) -> str:
    """What a value is, in a few words: `DataFrame 14 rows x 7 cols`, `dict of 3`."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and len(shape) == 2:
        return f"{type(value).__name__} {shape[0]} rows x {shape[1]} cols"
    if isinstance(value, (list, dict, str, bytes)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def outcome_words(status: str, actor: str, variable: str | None, seconds: float | None,
                  value: Any = None, run_id: str | None = None) -> list[str]:
    """The pieces of the one-line outcome, in order: status, what ran, how long, what was
    bound, which run."""
    words = [status, f"{actor} -> {variable}" if variable else actor]
    if seconds is not None:
        words.append(("took " if status == "SUCCEEDED" else "after ") + duration(seconds))
    if status == "SUCCEEDED":
        words.append(bound(variable, value))
    if run_id:
        words.append(f"run {run_id}")
    return words


def bound(variable: str | None, value: Any) -> str:
    """What a run bound: `items: DataFrame 14 rows x 7 cols`, or the value's summary."""
    what = summary(value) if value is not None else "None"
    return f"{variable}: {what}" if variable else what


def outcome_text(words: list[str]) -> str:
    return " | ".join(words)


def outcome_html(words: list[str], rerun_cell: str | None = None) -> str:
    """The outcome line as static HTML: what nbconvert, GitHub and nbviewer show of a
    panel, since they have no widget state."""
    status, what, *rest = words
    parts = [chip_html(status), f"<code>{html.escape(what)}</code>"]
    parts += [html.escape(word) for word in rest]
    line = " &middot; ".join(parts)
    if rerun_cell:
        line += ("<br><span class='apify-dim'>re-run from the panel as:</span>"
                 f"<pre style='margin:0'>{html.escape(rerun_cell)}</pre>")
    return f"{style_html()}<div class='apify-outcome'>{line}</div>"


def preview_html(value: Any) -> str:
    """The result's own rich view (a DataFrame's HTML with pandas' display options), else
    a compact, cut-off repr."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return str(value._repr_html_())
    if isinstance(value, dict) and 0 < len(value) <= 20 and all(
            isinstance(v, (str, int, float, bool)) or v is None for v in value.values()):
        # a flat record reads best as a key/value table
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th>"
                       f"<td>{html.escape(repr(v), quote=False)}</td></tr>"
                       for k, v in value.items())
        return f"<table class='apify-record'>{rows}</table>"
    import pprint

    text = pprint.pformat(value, compact=True, width=100, sort_dicts=False)
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + " …"
    return f"<pre style='margin:0'>{html.escape(text, quote=False)}</pre>"


def error_lines_html(text: str) -> str:
    """A message in the theme's error colour, each of its lines kept."""
    return "".join(f"<div class='apify-error'>{html.escape(line) or '&nbsp;'}</div>"
                   for line in text.splitlines())
