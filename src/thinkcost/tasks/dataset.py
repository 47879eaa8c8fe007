"""The skeleton shared by tasks read from a dataset (DataTask: options, lazy loading, stable ids,
skipped rows), so each benchmark module only says where its data lives, how a row becomes a prompt
and gold, and how an answer is checked; plus the helpers its `prepare` uses on a row's cells.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from thinkcost.errors import UserError
from thinkcost.tasks.base import check_limit
from thinkcost.tasks.loading import BadRow, load_rows, resolve_source, row_unit
from thinkcost.tasks.templating import check_template, parse_fields, render
from thinkcost.types import Problem, Verdict


class RowError(Exception):
    """Raised by `prepare` for a row it cannot use; DataTask.records adds the file and row number."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


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
        if limit is not None:
            check_limit(self.name, limit)
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
