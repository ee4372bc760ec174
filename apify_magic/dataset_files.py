"""`--to PATH`: dataset items written to a file as pages arrive, and the handle bound.

A dataset larger than memory cannot become a DataFrame; written page by page, memory
holds a few pages whatever the dataset's size. The format comes from the name:

- `.parquet` (needs pyarrow): one row group per page, through `pyarrow.parquet`. Columns
  are typed by Arrow as in the in-memory path (ISO dates stay strings); a later page
  gains the first page's missing columns as nulls and is cast to its types. A page that
  brings a new field, or a value of another type, cannot join the file's schema: the
  read stops with a ResultError that says to write `.jsonl` instead.
- `.jsonl`: the pages as the server sends them, byte for byte.
- `.csv`: each page through `DataFrame.to_csv`, with the first page's columns.

The variable is bound to a `DatasetFile`: `.path`, `.items`, `.to_pandas()` (the whole
file as a DataFrame: only for what fits in memory) and, for Parquet, `.dataset()`, a
lazy `pyarrow.dataset.Dataset` to scan, filter and read in batches.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from apify_magic.datasets import check_to, frame_from_pages
from apify_magic.errors import ResultError

if TYPE_CHECKING:
    import pandas as pd

JSONL_CHUNK_BYTES = 64 << 20


@dataclasses.dataclass(frozen=True)
class DatasetFile:
    """A dataset written by `--to`: where it is, and how to read it back."""

    path: Path
    format: str  # parquet, csv or jsonl
    items: int

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        if self.format == "parquet":
            frame: pd.DataFrame = self.dataset().to_table().to_pandas()
            return frame
        if self.format == "csv":
            return pd.read_csv(self.path) if self.items else pd.DataFrame()
        return frame_from_pages(list(_chunks(self.path)))

    def dataset(self) -> Any:
        """The Parquet file as a lazy `pyarrow.dataset.Dataset`."""
        if self.format != "parquet":
            raise ResultError(f"{self.path} is {self.format}, not Parquet: use to_pandas()")
        import pyarrow.dataset as ds

        return ds.dataset(self.path, format="parquet")

    def __repr__(self) -> str:
        return f"DatasetFile({str(self.path)!r}, {self.format}, {self.items:,} items)"


def _chunks(path: Path) -> Any:
    with open(path, "rb") as source:
        rest = b""
        while block := source.read(JSONL_CHUNK_BYTES):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield block[:cut]
        if rest.strip():
            yield rest


class _FileSink(abc.ABC):
    """Writes to a temporary file beside the target, moved into place when complete: a
    read that fails leaves no half file under the name asked for."""

    format = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        self.items = 0

    @abc.abstractmethod
    def add(self, page: bytes) -> None:
        """Write one page of items (JSON lines)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish the partial file."""

    def result(self) -> DatasetFile:
        self.close()
        os.replace(self.partial, self.path)
        return DatasetFile(self.path, self.format, self.items)

    def abandon(self) -> None:
        try:
            self.close()
        finally:
            self.partial.unlink(missing_ok=True)


class JsonlSink(_FileSink):
    format = "jsonl"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._out: BinaryIO = open(self.partial, "wb")  # noqa: SIM115 - closed in close()

    def add(self, page: bytes) -> None:
        self.items += page.count(b"\n")
        self._out.write(page)

    def close(self) -> None:
        self._out.close()


class CsvSink(_FileSink):
    format = "csv"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._out = open(self.partial, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._columns: list[str] | None = None

    def add(self, page: bytes) -> None:
        frame = frame_from_pages([page])
        if not len(frame):
            return
        if self._columns is None:
            self._columns = [str(c) for c in frame.columns]
        elif set(map(str, frame.columns)) - set(self._columns):
            new = sorted(set(map(str, frame.columns)) - set(self._columns))
            raise ResultError(f"items past {self.items:,} have fields the first page had "
                              f"not ({', '.join(new[:5])}): a CSV header cannot grow",
                              hint="write .jsonl or .parquet instead")
        frame.reindex(columns=self._columns).to_csv(
            self._out, header=self.items == 0, index=False)
        self.items += len(frame)

    def close(self) -> None:
        self._out.close()


class ParquetSink(_FileSink):
    format = "parquet"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._writer: Any = None

    def add(self, page: bytes) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = _page_table(page)
        if table is None or not table.num_rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.partial, table.schema)
        else:
            table = _conform(pa, table, self._writer.schema, self.items)
        self._writer.write_table(table)
        self.items += table.num_rows

    def close(self) -> None:
        if self._writer is None:  # no items: an empty file still reads as a dataset
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.partial, pa.schema([]))
        self._writer.close()


def _page_table(page: bytes) -> Any:
    from apify_magic.arrow import arrow_table, json_table

    table = arrow_table(page)
    return table if table is not None else json_table(page)


def _conform(pa: Any, table: Any, schema: Any, before: int) -> Any:
    new = [name for name in table.schema.names if name not in schema.names]
    if new:
        raise ResultError(f"items past {before:,} have fields the first page had not "
                          f"({', '.join(new[:5])}): a Parquet file has one schema",
                          hint="write .jsonl instead")
    columns = [table[f.name] if f.name in table.schema.names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    try:
        return pa.Table.from_arrays(columns, names=schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        raise ResultError(f"items past {before:,} do not fit the first page's types "
                          f"({err})", hint="write .jsonl instead") from None


def file_sink(to: str) -> _FileSink:
    path = check_to(to)
    kind: dict[str, type[ParquetSink] | type[CsvSink] | type[JsonlSink]] = {
        ".parquet": ParquetSink, ".csv": CsvSink, ".jsonl": JsonlSink}
    return kind[path.suffix.lower()](path)
