"""Defaults for every magic option, where each comes from, and their checks.

Highest first: the cell's own option, `%config ApifyMagic.<name>` (or `%apify_config`),
the environment variable `APIFY_MAGIC_<NAME>`, `[tool.apify_magic]` in the first
`pyproject.toml` found from the working directory (a notebook's folder) upward, and then
the built-in value (for run options: none, so the Actor's own default applies).

A value is checked when it is set (`%config`) or read (the environment, pyproject.toml)
with the option's own message, prefixed by where the value came from, so a bad default
never surfaces later as an error about a `--memory` the cell never had. A misspelt name
gets the closest real one.

`as` is a Python keyword: IPython's `%config` executes its line as Python, so
`%config ApifyMagic.as = ...` is a SyntaxError before any code of ours runs. Its name
there is `as_`; `%apify_config as = python`, `APIFY_MAGIC_AS` and `as = "python"` in
pyproject.toml use the plain name.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import TraitError, validate
from traitlets.config import Configurable

from apify_magic.errors import ApifyMagicError, OptionError
from apify_magic.options import RESULT_FORMS
from apify_magic.progress import PANEL_VIEWS, PROGRESS_MODES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_PREFIX = "APIFY_MAGIC_"
PYPROJECT_TABLE = "tool.apify_magic"
TARGETS = ("auto", "local", "platform")

# APIFY_MAGIC_* variables that set the runtime or the tests, not an option: never an
# unknown-option error.
OTHER_ENV = frozenset({"DATA_DIR", "RETENTION_DAYS", "KEEP_RUNS", "WARM_STARTS",
                       "WARM_PAD", "LOCAL_TRACE", "RUNTIME", "CONTRACT", "SLOW_TESTS"})


def _run_option(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        from apify_magic.options import RunOptions

        RunOptions(**{name: value}).validate()
    return check


def _dataset_option(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        from apify_magic.datasets import DatasetQuery, split_names

        if name in ("fields", "omit", "unwind", "flatten"):
            value = split_names(value)
        DatasetQuery(**{name: value}).validate()
    return check


def _content_type(value: Any) -> None:
    from apify_magic.body import check_content_type

    check_content_type(value)


def _at_least(flag: str, low: float, strict: bool = False) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not (math.isfinite(value) and (value > low if strict else value >= low)):
            raise OptionError(f"{flag} must be {'>' if strict else '>='} {low:g}, got {value}")
    return check


@dataclasses.dataclass(frozen=True)
class Setting:
    """One option (or magic setting) that may have a default."""

    name: str  # as in %config, with `-` as `_`
    kind: str  # int, float, str, bool, choice, json, names
    help: str
    choices: tuple[str, ...] = ()
    check: Callable[[Any], None] | None = None
    builtin: Any = None
    option: bool = True  # a --flag of %apify_run; else only a setting (target, poll_secs)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-") if self.option else self.name

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def config_name(self) -> str:
        return "as_" if self.name == "as" else self.name

    def accept(self, value: Any, where: str) -> Any:
        """The value, converted and checked, or OptionError naming `where`."""
        try:
            value = self._convert(value)
            if self.check is not None and value is not None:
                self.check(value)
        except ApifyMagicError as err:
            raise OptionError(f"{where} is refused: {err.message}", hint=err.hint or None
                              ) from None
        return value

    def _convert(self, value: Any) -> Any:
        if value is None:
            return None
        kind, text = self.kind, isinstance(value, str)
        if kind == "bool":
            if text and value.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if text and value.strip().lower() in ("0", "false", "no", "off"):
                return False
            if isinstance(value, bool):
                return value
            raise OptionError(f"{self.flag} is a flag: true or false, got {value!r}")
        if kind == "int":
            if text:
                try:
                    return int(value.strip())
                except ValueError:
                    pass
            elif isinstance(value, int) and not isinstance(value, bool):
                return value
            raise OptionError(f"{self.flag} takes a whole number, got {value!r}")
        if kind == "float":
            if text:
                try:
                    return float(value.strip())
                except ValueError:
                    pass
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise OptionError(f"{self.flag} takes a number, got {value!r}")
        if kind == "choice":
            word = value.strip().lower() if text else value
            if word not in self.choices:
                raise OptionError(f"{self.flag} must be one of {', '.join(self.choices)}, "
                                  f"got {value!r}", hint=closest(str(value), self.choices))
            return word
        if kind == "json":
            if text:
                try:
                    return json.loads(value)
                except (ValueError, RecursionError):
                    raise OptionError(f"{self.flag} is not valid JSON") from None
            return value
        if kind == "names":
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                value = ",".join(value)
            if not isinstance(value, str):
                raise OptionError(f"{self.flag} takes field names separated by commas")
            return value
        if not text:
            raise OptionError(f"{self.flag} takes text, got {value!r}")
        return value


SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("memory", "int", "Memory in MB, a power of 2 from 128 to 32768.",
            check=_run_option("memory")),
    Setting("timeout", "float", "Run timeout in seconds (0: none).",
            check=_run_option("timeout")),
    Setting("build", "str", "Build tag or number.", check=_run_option("build")),
    Setting("max_items", "int", "Most dataset items to be charged for.",
            check=_run_option("max_items")),
    Setting("max_total_charge_usd", "float", "Most a run may cost, in USD.",
            check=_run_option("max_total_charge_usd")),
    Setting("restart_on_error", "bool", "Restart a run that fails.",
            check=_run_option("restart_on_error")),
    Setting("output_record_key", "str", "Record to return instead of OUTPUT.",
            check=_run_option("output_record_key")),
    Setting("webhooks", "json", "Ad-hoc webhooks (a JSON array).",
            check=_run_option("webhooks")),
    Setting("content_type", "str", "Send the body verbatim with this Content-Type.",
            check=_content_type),
    Setting("watch", "bool", "Follow runs instead of run-sync.", builtin=False),
    Setting("task", "bool", "The positional names an Actor task.", builtin=False),
    Setting("dataset", "bool", "Return the default dataset's items.", builtin=False),
    Setting("fields", "names", "With --dataset: only these fields.",
            check=_dataset_option("fields")),
    Setting("omit", "names", "With --dataset: leave these fields out.",
            check=_dataset_option("omit")),
    Setting("limit", "int", "With --dataset: at most N items.", check=_dataset_option("limit")),
    Setting("offset", "int", "With --dataset: skip N items.", check=_dataset_option("offset")),
    Setting("clean", "bool", "With --dataset: skip empty items and hidden fields.",
            builtin=False),
    Setting("desc", "bool", "With --dataset: newest first.", builtin=False),
    Setting("unwind", "names", "With --dataset: expand these fields into items.",
            check=_dataset_option("unwind")),
    Setting("flatten", "names", "With --dataset: flatten these nested objects.",
            check=_dataset_option("flatten")),
    Setting("to", "str", "With --dataset: write the items to this .parquet, .csv or .jsonl "
            "file.", check=_dataset_option("to")),
    Setting("as", "choice", "Result form.", choices=RESULT_FORMS, builtin="auto"),
    Setting("progress", "choice", "How a run shows its progress.", choices=PROGRESS_MODES,
            builtin="auto"),
    Setting("background", "bool", "Return a job handle at once; the run goes on.",
            builtin=False),
    Setting("detach", "bool", "A background run outlives the kernel.", builtin=False),
    Setting("dry_run", "bool", "Show the request and a cost estimate; run nothing.",
            builtin=False),
    Setting("target", "choice", "auto, local or platform.", choices=TARGETS,
            builtin="auto", option=False),
    Setting("poll_secs", "float", "How long each poll of a watched run waits.",
            check=_at_least("poll_secs", 0, strict=True), builtin=1.0, option=False),
    Setting("max_retries", "int", "Retries of a POST that cannot have started a run.",
            check=_at_least("max_retries", 0), builtin=4, option=False),
    Setting("retry_base_secs", "float", "First retry delay in seconds.",
            check=_at_least("retry_base_secs", 0), builtin=0.5, option=False),
    Setting("panel_view", "choice", "How a run's panel first shows.", choices=PANEL_VIEWS,
            builtin="compact", option=False),
]}

CONFIG_NAMES = {s.config_name: s for s in SETTINGS.values()}
DATASET_OPTIONS = frozenset({"fields", "omit", "limit", "offset", "clean", "desc", "unwind",
                             "flatten", "to"})


def closest(name: str, names: Any, spell: Callable[[str], str] = str) -> str | None:
    """`did you mean X?` for the closest of `names`, or None."""
    found = difflib.get_close_matches(name.lower(), list(names), n=1, cutoff=0.6)
    return f"did you mean {spell(found[0])}?" if found else None


def setting(name: str, where: str) -> Setting:
    """The setting called `name` (`-` or `_`, `as_` or `as`), or OptionError."""
    key = name.strip().replace("-", "_")
    key = "as" if key == "as_" else key
    if key not in SETTINGS:
        raise OptionError(f"{where}: there is no option {name!r}",
                          hint=closest(key, SETTINGS) or "%apify_config lists them all")
    return SETTINGS[key]


@dataclasses.dataclass(frozen=True)
class Default:
    """A setting's effective default and where it came from."""

    name: str
    value: Any
    source: str  # "%config", "APIFY_MAGIC_MEMORY", "pyproject.toml (PATH)", "built-in"


def env_defaults(environ: Mapping[str, str] | None = None) -> dict[str, Default]:
    """The defaults `APIFY_MAGIC_<NAME>` variables set, checked; an unknown name close to
    an option's is refused with that option's name."""
    environ = os.environ if environ is None else environ
    found: dict[str, Default] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        rest = key[len(ENV_PREFIX):]
        name = rest.lower()
        if name not in SETTINGS:
            if rest in OTHER_ENV:
                continue
            hint = closest(name, SETTINGS, lambda n: ENV_PREFIX + n.upper())
            if hint:  # a near miss is a typo; anything else may be another tool's
                raise OptionError(f"{key} is not an apify-magic option", hint=hint)
            continue
        if not raw.strip():
            continue
        option = SETTINGS[name]
        value = option.accept(raw, f"{key}={raw!r}")
        found[name] = Default(name, value, key)
    return found


def find_pyproject(start: Path | None = None) -> Path | None:
    """The first pyproject.toml from `start` (the working directory) upward."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


_pyproject_cache: dict[Path, tuple[int, dict[str, Default]]] = {}


def pyproject_defaults(start: Path | None = None) -> dict[str, Default]:
    """The defaults of `[tool.apify_magic]`, checked; cached while the file is unchanged."""
    path = find_pyproject(start)
    if path is None:
        return {}
    stamp = path.stat().st_mtime_ns
    cached = _pyproject_cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise OptionError(f"{path} cannot be read: {err}") from None
    table = (data.get("tool") or {}).get("apify_magic") or {}
    if not isinstance(table, dict):
        raise OptionError(f"{path}: [{PYPROJECT_TABLE}] must be a table")
    source = f"pyproject.toml ({path})"
    found: dict[str, Default] = {}
    for key, raw in table.items():
        where = f"{path} [{PYPROJECT_TABLE}] {key} = {raw!r}"
        option = setting(key, f"{path} [{PYPROJECT_TABLE}]")
        found[option.name] = Default(option.name, option.accept(raw, where), source)
    _pyproject_cache[path] = (stamp, found)
    return found


def effective(configured: Mapping[str, Any], environ: Mapping[str, str] | None = None,
              start: Path | None = None) -> dict[str, Default]:
    """Every setting's default, highest source first: `configured` (the %config values
    that are set), the environment, pyproject.toml, the built-in value."""
    env = env_defaults(environ)
    project = pyproject_defaults(start)
    result: dict[str, Default] = {}
    for name, option in SETTINGS.items():
        if configured.get(name) is not None:
            result[name] = Default(name, configured[name], "%config")
        elif name in env:
            result[name] = env[name]
        elif name in project:
            result[name] = project[name]
        else:
            result[name] = Default(name, option.builtin,
                                   "built-in" if option.builtin is not None
                                   else "the Actor's default" if option.option else "unset")
    return result


def config_line(option: Setting, value: Any) -> str:
    """How `%config` spells setting this option to `value`."""
    return f"%config ApifyMagic.{option.config_name} = {value!r}"


def table(defaults: Mapping[str, Default]) -> str:
    """The effective defaults as aligned text: name, value, source."""
    rows = [(d.name, "-" if d.value is None else json.dumps(d.value)
             if not isinstance(d.value, str) else d.value, d.source)
            for d in defaults.values()]
    width = max(len(r[0]) for r in rows)
    vwidth = min(max(len(r[1]) for r in rows), 40)
    return "\n".join(f"{n:<{width}}  {v:<{vwidth}}  {s}" for n, v, s in rows)


class DefaultRefused(OptionError, TraitError):
    """A `%config` default refused: an OptionError, and a TraitError so that traitlets
    rolls the value back (it keeps a value whose check raised anything else)."""


def _trait(name: str) -> Any:
    option = SETTINGS["as" if name == "as_" else name]
    flag = f" (default {option.flag})" if option.option else ""
    return AnyTrait(None, allow_none=True, help=option.help + flag).tag(config=True)


class ConfigDefaults(Configurable):
    """The `%config ApifyMagic.<name>` defaults: each checked when it is set, a misspelt
    name refused with the closest real one. None: not set here."""

    memory = _trait("memory")
    timeout = _trait("timeout")
    build = _trait("build")
    max_items = _trait("max_items")
    max_total_charge_usd = _trait("max_total_charge_usd")
    restart_on_error = _trait("restart_on_error")
    output_record_key = _trait("output_record_key")
    webhooks = _trait("webhooks")
    content_type = _trait("content_type")
    watch = _trait("watch")
    task = _trait("task")
    dataset = _trait("dataset")
    fields = _trait("fields")
    omit = _trait("omit")
    limit = _trait("limit")
    offset = _trait("offset")
    clean = _trait("clean")
    desc = _trait("desc")
    unwind = _trait("unwind")
    flatten = _trait("flatten")
    to = _trait("to")
    as_ = _trait("as_")
    progress = _trait("progress")
    background = _trait("background")
    detach = _trait("detach")
    dry_run = _trait("dry_run")
    target = _trait("target")
    poll_secs = _trait("poll_secs")
    max_retries = _trait("max_retries")
    retry_base_secs = _trait("retry_base_secs")
    panel_view = _trait("panel_view")

    @validate(*CONFIG_NAMES)
    def _check(self, proposal: Any) -> Any:
        option = CONFIG_NAMES[proposal["trait"].name]
        value = proposal["value"]
        try:
            return option.accept(value, config_line(option, value))
        except OptionError as err:
            raise DefaultRefused(err.message, hint=err.hint or None) from None

    def _load_config(self, cfg: Any, section_names: Any = None, traits: Any = None) -> None:
        # traitlets only warns about an unknown name; a default that silently does
        # nothing is what this refuses.
        mine = self._find_my_config(cfg)
        known = self.traits(config=True)
        for name in mine:
            if name not in known and not name[:1].isupper():
                hint = closest(name, known, lambda n: f"ApifyMagic.{n}")
                raise OptionError(f"ApifyMagic.{name} is not a setting",
                                  hint=hint or "%apify_config lists them all")
        super()._load_config(cfg, section_names, traits)

    def configured(self) -> dict[str, Any]:
        """The values set with %config, by option name (`as`, not `as_`)."""
        return {option.name: getattr(self, config)
                for config, option in CONFIG_NAMES.items()
                if getattr(self, config) is not None}
