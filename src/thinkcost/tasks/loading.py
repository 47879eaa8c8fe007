"""Rows of a local file or a Hugging Face hub dataset, with our field names, and bad data reported
by file, row and field.

Why one loader: every public benchmark ships in a slightly different layout (JSONL here, Parquet
there, a nested ``label`` struct elsewhere), and users bring their own copies when the hub is out of
reach. Tasks declare which fields they need; this module finds them, checks them, and says exactly
where a file is wrong, so a run never starts on half-broken data without the user knowing.

Each returned row is the source's own dict plus
  - every mapped field under OUR name (``fields`` maps ours -> theirs, see templating.parse_fields;
    a dotted name such as ``label.final`` reaches into nested objects),
  - ``_source`` (file path, or ``hub:owner/name[config]:split``), ``_row`` (1-based row number; the
    line number for JSONL) and ``_index`` (0-based position among the source's records, bad ones
    included, so ids stay stable whether or not bad rows are skipped).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkcost.errors import UserError

_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_JSON_LIST_KEYS = ("data", "rows", "examples")
_HUB_ID_RE = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
HUB_INSTALL_HINT = "pip install 'thinkcost[hub]'"


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped, and why: enough to find and fix it in the file."""

    source: str
    row: int  # 1-based; the line number for JSONL
    field: str | None  # the source's column name, or None when the row as a whole is wrong
    reason: str
    unit: str = "row"  # "line" for JSONL, so the message points at the right thing

    def __str__(self) -> str:
        where = f"{self.source} {self.unit} {self.row}"
        return f"{where}: field {self.field!r}: {self.reason}" if self.field else f"{where}: {self.reason}"


# --- fields of a row ------------------------------------------------------------------------

_MISSING = object()


def _lookup(row: Mapping[str, Any], column: str) -> Any:
    """The value of `column`; a dotted name walks nested objects when no column has that exact name."""
    if column in row:
        return row[column]
    if "." not in column:
        return _MISSING
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def is_empty(value: Any) -> bool:
    """None, NaN, blank text and empty lists/objects carry no answer."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)):
        return len(value) == 0
    return False


# --- sources ---------------------------------------------------------------------------------


def _format_of(path: Path) -> tuple[str, bool]:
    """(format, gzipped) from the file name; unknown extensions are refused with the supported list."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None or (gz and fmt == "parquet"):
        raise UserError(
            f"{path}: unknown data file type; expected .jsonl, .json, .csv or .parquet "
            "(.jsonl.gz, .json.gz and .csv.gz also work)"
        )
    return fmt, gz


def _looks_like_path(source: str) -> bool:
    if source.startswith((".", "/", "~", "\\")) or "\\" in source or source.count("/") > 1:
        return True
    return any(source.lower().endswith(ext) or source.lower().endswith(ext + ".gz") for ext in _EXTENSIONS)


def resolve_source(source: str) -> tuple[str, str]:
    """("file", path) for an existing file, ("hub", id) for a dataset id; anything else is a UserError.

    Checked when a task is built, so a mistyped path fails before any model is loaded.
    """
    if not isinstance(source, str) or not source.strip():
        raise UserError(f"data: expected a file path or a hub dataset id, got {source!r}")
    source = source.strip()
    path = Path(source).expanduser()
    if path.is_dir():
        raise UserError(f"{source}: is a directory; pass a .jsonl, .json, .csv or .parquet file")
    if path.is_file():
        _format_of(path)
        return "file", str(path)
    if _looks_like_path(source):
        raise UserError(f"{source}: no such file")
    if not _HUB_ID_RE.fullmatch(source):
        raise UserError(f"data: {source!r} is neither an existing file nor a hub dataset id (owner/name)")
    return "hub", source


def _open_text(path: Path, gz: bool) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115  (wrapped and closed by caller)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _read_text(path: Path, gz: bool) -> str:
    try:
        with _open_text(path, gz) as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason}); save it as UTF-8") from None
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read file ({e})") from None


# Readers yield (row number, parsed value, why the row could not be parsed or None) in file order.
_Record = tuple[int, Any, "str | None"]


def _jsonl_records(path: Path, gz: bool) -> Iterator[_Record]:
    # split on "\n" only: str.splitlines would also break at U+2028 and friends inside JSON strings
    for lineno, line in enumerate(_read_text(path, gz).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line), None
        except json.JSONDecodeError as e:
            yield lineno, None, f"invalid JSON ({e.msg} at column {e.colno})"


def _json_records(path: Path, gz: bool) -> Iterator[_Record]:
    text = _read_text(path, gz)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if isinstance(doc, dict):
        key = next((k for k in _JSON_LIST_KEYS if isinstance(doc.get(k), list)), None)
        if key is None:
            raise UserError(
                f"{path}: expected a JSON list of objects, or an object with the list under "
                f"{', '.join(repr(k) for k in _JSON_LIST_KEYS)}; found keys {sorted(doc)[:8]}"
            )
        doc = doc[key]
    if not isinstance(doc, list):
        raise UserError(f"{path}: expected a JSON list of objects, got {type(doc).__name__}")
    for i, item in enumerate(doc, start=1):
        yield i, item, None


def _csv_records(path: Path, gz: bool) -> Iterator[_Record]:
    text = _read_text(path, gz)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        row = 0
        for values in reader:
            if not values or all(not v.strip() for v in values):
                continue
            row += 1
            if len(values) != len(header):
                yield row, None, f"has {len(values)} values but the header has {len(header)} columns"
            else:
                yield row, dict(zip(header, values, strict=True)), None
    except csv.Error as e:
        raise UserError(f"{path}: malformed CSV near line {reader.line_num}: {e}") from None


def _parquet_records(path: Path) -> Iterator[_Record]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises ArrowInvalid, ArrowIOError, OSError...
        raise UserError(f"{path}: cannot read Parquet file ({type(e).__name__}: {e})") from None
    for i, item in enumerate(rows, start=1):
        yield i, item, None


def _file_records(path: Path) -> tuple[Iterator[_Record], str]:
    fmt, gz = _format_of(path)
    if fmt == "jsonl":
        return _jsonl_records(path, gz), "line"
    if fmt == "json":
        return _json_records(path, gz), "row"
    if fmt == "csv":
        return _csv_records(path, gz), "row"
    return _parquet_records(path), "row"


def _hub_label(source: str, config: str | None, split: str) -> str:
    return f"hub:{source}" + (f"[{config}]" if config else "") + f":{split}"


def _hub_records(source: str, config: str | None, split: str) -> Iterator[_Record]:
    """Rows of a hub dataset through `datasets` (imported only here, so it stays an optional extra)."""
    try:
        import datasets
    except ImportError:
        raise UserError(
            f"loading {source!r} from the Hugging Face hub needs the `datasets` package: {HUB_INSTALL_HINT} "
            "(or pass a local copy with --data PATH)"
        ) from None
    what = f"{source!r}" + (f" (config {config!r})" if config else "") + f" split {split!r}"
    try:
        ds = datasets.load_dataset(source, config, split=split)
        rows = [dict(r) for r in ds]
    except Exception as e:  # network, auth (gated), unknown config/split: all end the same way for the user
        msg = (str(e).strip().splitlines() or [""])[0][:300]
        raise UserError(
            f"could not load dataset {what} from the Hugging Face hub ({type(e).__name__}: {msg}); "
            "if the hub is unreachable, download a copy and pass it with --data PATH "
            "(JSONL, JSON, CSV or Parquet); gated datasets also need `huggingface-cli login`"
        ) from None
    for i, item in enumerate(rows, start=1):
        yield i, item, None


# --- loading ---------------------------------------------------------------------------------


def _describe_missing(ours: str, theirs: str, row: Mapping[str, Any]) -> str:
    cols = ", ".join(sorted(str(k) for k in row)[:12])
    hint = f" (our field {ours!r}; remap it with --fields {ours}=COLUMN)" if ours != theirs else ""
    return f"missing{hint}; columns: {cols}"


def load_rows(
    source: str,
    *,
    split: str = "test",
    config: str | None = None,
    fields: Mapping[str, str] | None = None,
    required: Sequence[str],
    skip_bad_rows: bool = False,
) -> tuple[list[dict[str, Any]], list[BadRow]]:
    """Rows of a local file or hub dataset with `fields` renamed to our names, and the rows skipped.

    `required` names OUR fields that must be present and non-empty. A bad row (not an object, a
    required field missing or empty, an invalid JSONL line, a CSV row of the wrong width) raises a
    UserError naming the file, the row (line for JSONL) and the field -- or, with skip_bad_rows, is
    returned as a BadRow. A file that cannot be parsed at all always raises; so does a source with
    no usable rows.
    """
    kind, where = resolve_source(source)
    mapping = {f: f for f in required}
    mapping.update(fields or {})
    if kind == "file":
        records, unit = _file_records(Path(where))
        label = where
    else:
        records, unit = _hub_records(where, config, split), "row"
        label = _hub_label(where, config, split)

    rows: list[dict[str, Any]] = []
    bad: list[BadRow] = []
    for index, (row_no, value, parse_error) in enumerate(records):
        problem = _check(value, parse_error, mapping, required)
        if problem is not None:
            field, reason = problem
            bad_row = BadRow(label, row_no, field, reason, unit)
            if not skip_bad_rows:
                raise UserError(f"{bad_row} (use --skip-bad-rows to skip such rows)")
            bad.append(bad_row)
            continue
        out = dict(value)
        for ours, theirs in mapping.items():
            found = _lookup(value, theirs)
            if found is not _MISSING:
                out[ours] = found
        out.update(_source=label, _row=row_no, _index=index)
        rows.append(out)
    if not rows:
        if bad:
            raise UserError(f"{label}: no usable rows ({len(bad)} bad; first: {bad[0]})")
        raise UserError(f"{label}: no rows")
    return rows, bad


def _check(
    value: Any, parse_error: str | None, mapping: Mapping[str, str], required: Sequence[str]
) -> tuple[str | None, str] | None:
    """(field, reason) when a record cannot be used, else None."""
    if parse_error is not None:
        return None, parse_error
    if not isinstance(value, Mapping):
        return None, f"is not an object (got {type(value).__name__})"
    for ours in required:
        theirs = mapping.get(ours, ours)
        found = _lookup(value, theirs)
        if found is _MISSING:
            return theirs, _describe_missing(ours, theirs, value)
        if is_empty(found):
            return theirs, "is empty"
    return None


def row_unit(label: str) -> str:
    """How rows of a source are counted in messages: "line" for JSONL files, "row" otherwise."""
    name = label.lower().removesuffix(".gz")
    return "line" if name.endswith((".jsonl", ".ndjson")) else "row"
