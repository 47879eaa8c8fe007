"""Rows for dataset-backed tasks: read a local file or a Hugging Face hub dataset, rename columns to
the names a task uses, and report bad data by file, row and field. Also the skeleton those tasks
share (DataTask: options, lazy loading, stable ids, skipped rows), so each benchmark module only
says where its data lives, how a row becomes a prompt and gold, and how an answer is checked.

Why one loader: every public benchmark ships in a slightly different layout (JSONL here, Parquet
there, a nested ``label`` struct elsewhere), and users bring their own copies when the hub is out of
reach. Tasks declare which fields they need; this module finds them, checks them, and says exactly
where a file is wrong, so a run never starts on half-broken data without the user knowing.

Each returned row is the source's own dict plus
  - every mapped field under OUR name (``fields`` maps ours -> theirs; a dotted name such as
    ``label.final`` reaches into nested objects),
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
from thinkcost.types import Problem, Verdict

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


class RowError(Exception):
    """Raised while turning one row into a problem; the loader attaches file and row number."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


# --- field mapping ---------------------------------------------------------------------------


def parse_fields(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"question=problem,answer=solution"`` (or a dict) -> {ours: theirs}; malformed specs are refused."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(k, v) for k, v in spec.items()]
        for k, v in pairs:
            if not isinstance(k, str) or not isinstance(v, str) or not k.strip() or not v.strip():
                raise UserError(f"fields: expected our_field -> column name strings, got {k!r}: {v!r}")
        return {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(spec, str):
        raise UserError(f"fields: expected 'ours=theirs,...' or a mapping, got {type(spec).__name__}")
    out: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        ours, sep, theirs = part.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sep or not ours or not theirs or "=" in theirs:
            raise UserError(
                f"fields: malformed pair {part.strip()!r}; expected ours=theirs pairs such as "
                "question=problem,answer=solution"
            )
        if ours in out:
            raise UserError(f"fields: {ours!r} is mapped twice in {spec!r}")
        out[ours] = theirs
    if not out:
        raise UserError(f"fields: no ours=theirs pairs in {spec!r}")
    return out


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


# --- prompt templates ------------------------------------------------------------------------

_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)\}")


def check_template(template: str, allowed: Sequence[str], task: str) -> str:
    """Refuse a template that names a placeholder the task does not fill.

    Placeholders are ``{name}`` with a Python identifier inside; other braces (``\\boxed{}``) stay as
    they are, and ``{{``/``}}`` write a literal brace.
    """
    if not isinstance(template, str) or not template.strip():
        raise UserError(f"{task}: prompt template must be a non-empty string")
    unknown = sorted({m.group(1) for m in _PLACEHOLDER_RE.finditer(template) if m.group(1)} - set(allowed))
    if unknown:
        known = ", ".join("{" + a + "}" for a in allowed)
        raise UserError(
            f"{task}: prompt template uses unknown placeholder(s) "
            f"{', '.join('{' + u + '}' for u in unknown)}; known: {known} (write literal braces as {{{{ }}}})"
        )
    return template


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a template checked by check_template."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return str(values[m.group(1)])

    return _PLACEHOLDER_RE.sub(sub, template)


def as_text(value: Any) -> str:
    """A cell as text: integral floats lose their ``.0`` (CSV/Parquet readers make 33 into 33.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else str(value)


def as_list(value: Any) -> list[Any]:
    """A list cell; text holding a JSON list (as CSV stores it) is decoded, other text is split by line."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError:
                decoded = None
            if isinstance(decoded, list):
                return decoded
        return [line for line in text.splitlines() if line.strip()]
    return [value]


def row_unit(label: str) -> str:
    """How rows of a source are counted in messages: "line" for JSONL files, "row" otherwise."""
    name = label.lower().removesuffix(".gz")
    return "line" if name.endswith((".jsonl", ".ndjson")) else "row"


# --- the skeleton shared by dataset-backed tasks ----------------------------------------------

SYSTEM_PROMPT = "You are a helpful assistant."  # the same as the arithmetic task, so tasks compare


class DataTask:
    """Options, lazy loading, stable ids and bad-row bookkeeping for tasks read from a dataset.

    A subclass declares its hub dataset (`source`, `configs`, `default_split`), the fields it reads
    (`columns`: our name -> hub column; `required`), its prompt (`template`, `placeholders`), and
    implements `prepare(row)` (row -> record, raising RowError for unusable data), `build` only when
    the prompt depends on the seed, and `verify`.
    """

    name: str
    source: str
    size: int | str
    metric: str
    answer_type: str
    configs: tuple[str | None, ...] = (None,)
    default_split: str = "test"
    columns: Mapping[str, str] = {}
    required: tuple[str, ...] = ()
    placeholders: tuple[str, ...] = ("question",)
    template: str = "{question}"

    def __init__(
        self,
        data: str | None = None,
        fields: Mapping[str, str] | str | None = None,
        split: str | None = None,
        config: str | None = None,
        skip_bad_rows: bool = False,
        prompt: str | None = None,
    ) -> None:
        if data is not None:
            data = str(data) if hasattr(data, "__fspath__") else data
            resolve_source(data)  # a mistyped path fails now, not after the model has loaded
        mapping = parse_fields(fields)
        unknown = sorted(set(mapping) - set(self.columns))
        if unknown:
            raise UserError(
                f"{self.name}: unknown field(s) {', '.join(map(repr, unknown))} in fields; "
                f"this task reads {', '.join(self.columns)}"
            )
        for opt, v in (("split", split), ("config", config)):
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise UserError(f"{self.name}: option {opt}={v!r} must be a non-empty string")
        if not isinstance(skip_bad_rows, bool):
            raise UserError(f"{self.name}: option skip_bad_rows={skip_bad_rows!r} must be true or false")
        self.data = data
        self.fields = {**self.columns_for(config), **mapping}
        self.split = split or self.default_split
        self.config = config
        self.skip_bad_rows = skip_bad_rows
        self.prompt = check_template(
            self.template if prompt is None else prompt, self.placeholders, self.name
        )
        self.skipped: list[BadRow] = []
        self._records: list[tuple[str, dict[str, Any]]] | None = None

    def columns_for(self, config: str | None) -> dict[str, str]:
        """Our field -> hub column for a config (override where configs name columns differently)."""
        return dict(self.columns)

    # -- loading --
    def _sources(self) -> list[tuple[str, str | None]]:
        if self.data is not None:
            return [(self.data, self.config)]
        configs = (self.config,) if self.config is not None else self.configs
        return [(self.source, c) for c in configs]

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """(problem id, prepared record) for every usable row, loaded once; fills self.skipped."""
        if self._records is not None:
            return self._records
        out: list[tuple[str, dict[str, Any]]] = []
        skipped: list[BadRow] = []
        offset = 0
        for src, config in self._sources():
            rows, bad = load_rows(
                src,
                split=self.split,
                config=config,
                fields=self.fields,
                required=self.required,
                skip_bad_rows=self.skip_bad_rows,
            )
            skipped.extend(bad)
            for row in rows:
                try:
                    record = self.prepare(row)
                except RowError as e:
                    column = self.fields.get(e.field, e.field) if e.field else None
                    bad_row = BadRow(row["_source"], row["_row"], column, e.reason, row_unit(row["_source"]))
                    if not self.skip_bad_rows:
                        raise UserError(f"{bad_row} (use --skip-bad-rows to skip such rows)") from None
                    skipped.append(bad_row)
                    continue
                record.setdefault("meta", {}).update(source=row["_source"], row=row["_row"])
                out.append((f"{self.name}-{offset + row['_index']:04d}", record))
            offset += len(rows) + len(bad)
        if not out:
            raise UserError(f"{self.name}: no usable rows ({len(skipped)} bad; first: {skipped[0]})")
        self.skipped, self._records = skipped, out
        return out

    # -- the Task protocol --
    def problems(self, limit: int | None = None, seed: int = 0) -> list[Problem]:
        """The first `limit` usable rows in file order (all when None) as problems."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise UserError(f"{self.name}: limit={limit!r} must be an integer >= 1")
        chosen = self.records() if limit is None else self.records()[:limit]
        return [self.build(pid, record, seed) for pid, record in chosen]

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        """Row -> record: "gold", "meta" and a text value per placeholder. Raise RowError on bad data."""
        raise NotImplementedError

    def build(self, pid: str, record: dict[str, Any], seed: int) -> Problem:
        """The problem for a prepared record (override when the prompt depends on the seed)."""
        values = {p: record[p] for p in self.placeholders}
        return self.make_problem(pid, render(self.prompt, values), record["gold"], record["meta"])

    def make_problem(self, pid: str, user_prompt: str, gold: str, meta: dict[str, Any]) -> Problem:
        return Problem(
            task=self.name,
            id=pid,
            messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_prompt}],
            gold=gold,
            meta=meta,
        )

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        raise NotImplementedError
