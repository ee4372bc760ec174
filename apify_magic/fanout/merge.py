"""The map's one result: each run's value converted as it arrives, one DataFrame at the end.

Raw bodies are dropped as soon as a run's value is converted, so memory holds the
converted pieces and, while they are concatenated, the final frame: about twice it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class Merge:
    """Values by job position; `frame()` puts them together in the inputs' order."""

    def __init__(self) -> None:
        self.values: dict[int, Any] = {}

    def add(self, position: int, value: Any) -> None:
        self.values[position] = value

    def frame(self, labels: Sequence[Hashable], index_name: str) -> pd.DataFrame:
        """Tables concatenated with the label as the outer index level; any other
        results one row per input with an `output` column."""
        import pandas as pd

        order = sorted(self.values)
        values = [self.values[p] for p in order]
        keys = [labels[p] for p in order]
        if values and all(isinstance(v, pd.DataFrame) for v in values):
            frame: pd.DataFrame = pd.concat(values, keys=keys, names=[index_name, None])
            self.values.clear()  # the pieces live on only in the frame
            return frame
        index = pd.Index(keys, name=index_name, tupleize_cols=False)
        return pd.DataFrame({"output": pd.Series(values, index=index, dtype=object)})


class MapReport:
    """What `df.attrs["apify_map"]` holds: the per-run table and the map's figures.

    Copied as itself: pandas deep-copies `attrs` on every operation on the frame, which
    would copy a table of thousands of runs each time."""

    def __init__(self, runs: pd.DataFrame, *, actor_id: str, ledger: str,
                 concurrency: int, stats: dict[str, Any]) -> None:
        self.runs = runs
        self.actor_id = actor_id
        self.ledger = ledger
        self.concurrency = concurrency
        self.stats = stats

    def __deepcopy__(self, memo: dict[int, Any]) -> MapReport:
        return self

    def __copy__(self) -> MapReport:
        return self

    def __repr__(self) -> str:
        counts = self.runs["status"].value_counts().to_dict() if len(self.runs) else {}
        shown = ", ".join(f"{n} {s}" for s, n in counts.items())
        return (f"<apify_map {self.actor_id}: {len(self.runs)} runs ({shown}), "
                f"concurrency {self.concurrency}, ledger {self.ledger}>")
