"""Reading tabular source files safely: CSV and Parquet streamed in blocks, bad rows set aside.

Shared by the usage and NPS readers (`usage_files`, `nps_files`). A file that cannot be read at
all (no header, a missing column, not Parquet) raises an `InputError` naming the file and what to
fix; a row that cannot be used becomes a `Reject` with its row number, and the rows around it
still load. Memory stays flat in the file's size: both formats are read one Arrow block at a time
(CSV by 1 MiB of text, Parquet by 64Ki rows) and only the requested columns are kept.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from smartseg.config.sources import FileInput
from smartseg.connectors.row_values import BadValue, excerpt
from smartseg.errors import SmartsegError

__all__ = [
    "MAX_VALUE_CHARS",
    "Block",
    "Column",
    "FileChunk",
    "InputError",
    "NpsFileError",
    "Piece",
    "Record",
    "Reject",
    "UsageFileError",
    "bad_text",
    "block_records",
    "check_lengths",
    "convert_records",
    "expand_paths",
    "file_fingerprint",
    "normalize_header",
    "read_blocks",
    "read_exports",
    "rechunk",
    "resolve_columns",
]

MAX_VALUE_CHARS = 1_000
_FINGERPRINT_BLOCK = 64 * 1024
_CSV_BLOCK_BYTES = 1 << 20
_PARQUET_BATCH_ROWS = 65_536  # fixed, so float sums never depend on the caller's chunk size
_PARQUET_BUFFER = 1 << 20
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS_RE = re.compile(r"[\s\-./]+")
_GLOB_RE = re.compile(r"[*?\[]")


class InputError(SmartsegError):
    """A source file or query that cannot be read at all (rejected rows are not errors)."""

    def __init__(self, message: str, *, file: Path | None = None) -> None:
        self.file = file
        super().__init__(message)


class UsageFileError(InputError):
    """A usage file or warehouse query that cannot be read: the message says which and why."""


class NpsFileError(InputError):
    """An NPS export that cannot be read: the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Reject:
    """A row set aside: its file (None for a warehouse query), its 1-based data row number
    (the header and blank lines are not counted), why, and an excerpt of the bad value."""

    file: Path | None
    row: int
    reason: str
    value: str = ""

    def __str__(self) -> str:
        where = f"{self.file}, " if self.file is not None else ""
        shown = f" (value {self.value!r})" if self.value else ""
        return f"{where}row {self.row}: {self.reason}{shown}"


@dataclass(frozen=True, slots=True)
class Column:
    """A logical column: the header names accepted for it (first is canonical, all compared
    after `normalize_header`), whether a file must have it, and its longest accepted value."""

    name: str
    aliases: tuple[str, ...]
    required: bool = True
    max_chars: int | None = MAX_VALUE_CHARS
    hint: str = "rename the column in the export"


@dataclass(frozen=True, slots=True)
class Record:
    """One data row: its number and its values in the order of the requested columns, None
    where an optional column is absent."""

    number: int
    values: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive rows as Arrow arrays, one per requested column (None where absent);
    `first` is the number of its first row, `numbers` each row's number when rows set aside
    as malformed sat between them."""

    first: int
    arrays: tuple[pa.Array | None, ...]
    length: int
    numbers: tuple[int, ...] | None = None

    def number(self, offset: int) -> int:
        return self.first + offset if self.numbers is None else self.numbers[offset]


Piece = tuple[list[dict[str, Any]], list[Reject]]


def normalize_header(name: str) -> str:
    """`User Email`, `userEmail`, `USER-EMAIL` and `user_email` all become `user_email`."""
    name = _CAMEL_RE.sub("_", name.strip().lstrip("\ufeff"))
    return _SEPARATORS_RE.sub("_", name).lower().strip("_")


def resolve_columns(
    found: Sequence[str],
    columns: Sequence[Column],
    *,
    where: str,
    error: type[InputError],
    file: Path | None = None,
) -> tuple[int | None, ...]:
    """The index in `found` of each column (None for an absent optional one).

    Raises `error` naming `where`, the missing column, the names accepted and the columns found.
    """
    index: dict[str, int] = {}
    for position, name in enumerate(found):
        index.setdefault(normalize_header(name), position)
    picked: list[int | None] = []
    for column in columns:
        at = next((index[alias] for alias in column.aliases if alias in index), None)
        if at is None and column.required:
            others = ", ".join(column.aliases[1:])
            also = f" (also accepted: {others})" if others else ""
            shown = ", ".join(found) or "none"
            raise error(
                f"{where} has no {column.name!r} column{also}; found columns: {shown}. "
                f"To fix: {column.hint}.",
                file=file,
            )
        picked.append(at)
    return tuple(picked)


def expand_paths(pattern: Path, *, error: type[InputError]) -> list[Path]:
    """The files a configured path names, sorted so runs are deterministic.

    A glob matching nothing gives no files (exports may not have arrived yet); a plain path
    that does not exist is an error, since it is most likely a typo.
    """
    text = str(pattern)
    if _GLOB_RE.search(text):
        return sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    if not pattern.is_file():
        raise error(
            f"{pattern} does not exist. To fix: check the path in config (relative paths are "
            "relative to the config file's folder).",
            file=pattern,
        )
    return [pattern]


def file_fingerprint(path: Path) -> str:
    """`size:mtime_ns:sha256` of a file, hashing only its first and last 64 KiB when larger,
    so a framework can skip files it has already loaded unchanged without reading them."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if stat.st_size <= 2 * _FINGERPRINT_BLOCK:
            digest.update(handle.read())
        else:
            digest.update(handle.read(_FINGERPRINT_BLOCK))
            handle.seek(-_FINGERPRINT_BLOCK, io.SEEK_END)
            digest.update(handle.read(_FINGERPRINT_BLOCK))
    return f"{stat.st_size}:{stat.st_mtime_ns}:{digest.hexdigest()}"


def read_blocks(
    path: Path,
    fmt: Literal["csv", "parquet"],
    columns: Sequence[Column],
    *,
    error: type[InputError],
) -> Iterator[Block | Reject]:
    """Stream a CSV or Parquet file as Arrow `Block`s of the requested columns.

    CSV rows with the wrong number of fields come out as `Reject`s; blank lines are skipped.
    Values are not checked here: see `arrow_columns` (fast) and `block_records` (row by row).
    """
    if fmt == "csv":
        return _csv_blocks(path, columns, error)
    return _parquet_blocks(path, columns, error)


def check_lengths(
    number: int, values: Sequence[object], columns: Sequence[Column], file: Path | None
) -> Reject | None:
    """A Reject when a text value is longer than its column allows (SQL rows use this)."""
    for value, column in zip(values, columns, strict=True):
        limit = column.max_chars
        if limit is not None and isinstance(value, str) and len(value) > limit:
            reason = f"{column.name} is over {limit:,} characters"
            return Reject(file, number, reason, excerpt(value))
    return None


# --- CSV ------------------------------------------------------------------------------------


def _csv_blocks(
    path: Path, columns: Sequence[Column], error: type[InputError]
) -> Iterator[Block | Reject]:
    header = _csv_header(path, columns, error)
    picks = resolve_columns(header, columns, where=str(path), error=error, file=path)
    names = [header[at] for at in sorted({at for at in picks if at is not None})]
    seen = [0]  # rows handed out so far, good and set aside
    malformed: list[pacsv.InvalidRow] = []
    # pyarrow sets rows with the wrong number of fields aside without saying where they were
    # (InvalidRow.number is None when streaming), so once it sets one aside the file is read
    # again to find their numbers; then good rows are numbered around them.
    misfits: list[int] | None = None
    good = [0]  # good rows handed out so far

    def set_aside(row: pacsv.InvalidRow) -> str:
        if row.text.strip():
            malformed.append(row)
        return "skip"

    cursor = [0, 0]  # the number of the last good row, and how many misfits lie before it

    def good_numbers(count: int) -> tuple[int, ...]:
        """The numbers of the next `count` good rows: the numbers that are not misfits."""
        assert misfits is not None
        number, k = cursor
        numbers = []
        for _ in range(count):
            number += 1
            while k < len(misfits) and misfits[k] <= number:
                if misfits[k] == number:  # that row was set aside: the good row is the next
                    number += 1
                k += 1
            numbers.append(number)
        cursor[:] = [number, k]
        return tuple(numbers)

    def rejects() -> Iterator[Reject]:
        nonlocal misfits
        if malformed and misfits is None:
            misfits = _misfit_rows(path, len(header))
            cursor[:] = [good[0], 0]  # every row handed out so far came before the first
        for row in malformed:
            at = seen[0] - good[0]  # malformed rows handed out so far
            number = misfits[at] if misfits is not None and at < len(misfits) else seen[0] + 1
            reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
            yield Reject(path, number, reason, excerpt(row.text))
            seen[0] += 1
        malformed.clear()

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=set_aside
            ),
            # Binary, not string: bytes that are not UTF-8 then reject their row, not the file.
            convert_options=pacsv.ConvertOptions(
                include_columns=names, column_types=dict.fromkeys(names, pa.binary())
            ),
        )
        position = {name: k for k, name in enumerate(reader.schema.names)}
        for batch in reader:
            yield from rejects()
            arrays = tuple(
                None if at is None else batch.column(position[header[at]]) for at in picks
            )
            if misfits:
                numbers = good_numbers(batch.num_rows)
                yield Block(numbers[0] if numbers else 1, arrays, batch.num_rows, numbers)
            else:
                yield Block(seen[0] + 1, arrays, batch.num_rows)
            seen[0] += batch.num_rows
            good[0] += batch.num_rows
        yield from rejects()
    except (pa.ArrowException, OSError) as exc:
        raise error(
            f"{path}, after row {seen[0]}: not valid CSV ({exc}). To fix: look for an unclosed "
            "quote or a line that is not CSV near that row.",
            file=path,
        ) from None


def _misfit_rows(path: Path, expected: int) -> list[int]:
    """The numbers of the data rows with other than `expected` fields, counted as pyarrow
    counts rows: blank lines are not rows."""
    found: list[int] = []
    number = 0
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as text:
        rows = csv.reader(text)
        next(rows, None)  # the header
        for row in rows:
            if len(row) != expected and not "".join(row).strip():
                continue
            number += 1
            if len(row) != expected:
                found.append(number)
    return found


def _csv_header(path: Path, columns: Sequence[Column], error: type[InputError]) -> list[str]:
    """The header row, read in Python so an undecodable or missing header names the file."""
    with path.open("rb") as raw:
        start = raw.read(4)
        raw.seek(0)
        wanted = ", ".join(c.name for c in columns if c.required)
        if not start:
            raise error(
                f"{path} is empty: expected a header row naming the columns ({wanted}).",
                file=path,
            )
        if start.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise error(f"{path} is UTF-16 text. To fix: export it as UTF-8 CSV.", file=path)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        header = next(csv.reader(itertools.islice(text, 1)), [])
    joined = ",".join(header)
    if not joined.strip():
        raise error(
            f"{path} has no header row on its first line: expected the columns ({wanted}).",
            file=path,
        )
    if bad_text(joined):
        raise error(
            f"{path}: the header row is not UTF-8 text ({excerpt(joined)!r}). "
            "To fix: export the file as UTF-8.",
            file=path,
        )
    return header


def bad_text(text: str) -> str:
    """Why decoded text is unusable, or '' when it is fine."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "has bytes that are not UTF-8 (latin-1 or another encoding?)"
    return "contains NUL characters (UTF-16 text in a UTF-8 file?)" if "\x00" in text else ""


# --- Parquet --------------------------------------------------------------------------------


def _parquet_blocks(
    path: Path, columns: Sequence[Column], error: type[InputError]
) -> Iterator[Block | Reject]:
    try:
        parquet = pq.ParquetFile(path, buffer_size=_PARQUET_BUFFER, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise error(
            f"{path} is not a readable Parquet file ({exc}). To fix: re-export it, or remove it "
            "from the configured folder.",
            file=path,
        ) from None
    names = parquet.schema_arrow.names
    picks = resolve_columns(names, columns, where=str(path), error=error, file=path)
    wanted = sorted({at for at in picks if at is not None})
    position = {at: k for k, at in enumerate(wanted)}
    number = 0
    try:
        batches = parquet.iter_batches(
            batch_size=_PARQUET_BATCH_ROWS, columns=[names[at] for at in wanted]
        )
        for batch in batches:
            arrays = tuple(None if at is None else batch.column(position[at]) for at in picks)
            yield Block(number + 1, arrays, batch.num_rows)
            number += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise error(
            f"{path}, after row {number}: cannot read the Parquet file ({exc}); it may be "
            "truncated. To fix: re-export it.",
            file=path,
        ) from None


# --- Row by row -----------------------------------------------------------------------------


def block_records(
    block: Block, columns: Sequence[Column], file: Path | None
) -> Iterator[Record | Reject]:
    """A block's rows one by one (the slow path, for blocks with a problem somewhere): each
    row is decoded and checked, and becomes a Record or a Reject naming its row."""
    absent = [None] * block.length
    lists = [absent if a is None else a.to_pylist() for a in block.arrays]
    for offset, raw in enumerate(zip(*lists, strict=True)):
        number = block.number(offset)
        values = tuple(v.decode("utf-8", "surrogateescape") if type(v) is bytes else v for v in raw)
        if not any(v not in (None, "") for v in values):
            continue  # a row of empty fields is a blank line
        texts = [v for v in values if isinstance(v, str)]
        problem = bad_text("".join(texts))
        if problem:
            yield Reject(file, number, problem, excerpt(",".join(texts)))
            continue
        reject = check_lengths(number, values, columns, file)
        yield reject if reject is not None else Record(number, values)


def convert_records(
    items: Iterable[Record | Reject],
    convert: Callable[[tuple[object, ...]], dict[str, Any]],
    *,
    file: Path | None,
    piece_rows: int,
) -> Iterator[Piece]:
    """Convert records into pieces of at most `piece_rows` rows, a BadValue becoming a Reject."""
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for item in items:
        if isinstance(item, Reject):
            rejects.append(item)
        else:
            try:
                rows.append(convert(item.values))
            except BadValue as bad:
                rejects.append(Reject(file, item.number, bad.reason, bad.value))
        if len(rows) >= piece_rows or len(rejects) >= piece_rows:
            yield rows, rejects
            rows, rejects = [], []
    if rows or rejects:
        yield rows, rejects


def rechunk(
    pieces: Iterable[Piece], chunk_rows: int
) -> Iterator[tuple[list[dict[str, Any]], list[Reject], bool]]:
    """Regroup pieces into chunks of at most `chunk_rows` rows, rejects travelling with the
    rows read around them; the final chunk, flagged True, may be empty."""
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for piece_rows, piece_rejects in pieces:
        rejects.extend(piece_rejects)
        start = 0
        while start < len(piece_rows):
            take = min(chunk_rows - len(rows), len(piece_rows) - start)
            rows.extend(piece_rows[start : start + take])
            start += take
            if len(rows) >= chunk_rows:
                yield rows, rejects, False
                rows, rejects = [], []
        if len(rejects) >= chunk_rows:
            yield rows, rejects, False
            rows, rejects = [], []
    yield rows, rejects, True


@dataclass(frozen=True, slots=True)
class FileChunk:
    """Up to `chunk_rows` validated rows of one file and the rejects met while reading them;
    `last` marks the file's final chunk (possibly empty), where its fingerprint may be saved."""

    file: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    last: bool = False


def read_exports(
    spec: FileInput,
    chunk_rows: int,
    *,
    error: type[InputError],
    pieces: Callable[[Path, FileInput, int], Iterator[Piece]],
) -> Iterator[FileChunk]:
    """Every file `spec.path` matches (sorted), read by `pieces` and regrouped into chunks."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    for path in expand_paths(spec.path, error=error):
        for rows, rejects, last in rechunk(pieces(path, spec, chunk_rows), chunk_rows):
            yield FileChunk(path, rows, rejects, last)
