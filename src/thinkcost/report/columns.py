"""The summary table's columns, declared once: the terminal table, Markdown and HTML all render
from this spec, so a column can never mean one thing in one of them and another elsewhere.

A column is a header, a cell (row -> text), an optional sort value (row -> number, for the
HTML page's sortable headers; none = a text column sorted by its cell) and, per view, when it
is shown. There are two views: "table" (the terminal table and Markdown, which must stay the
same cells, since a pasted table has to match `thinkcost report`) and "html" (the page, which
has room for the b/w figures in columns of their own and the count of failed samples).

Every cell reads a row as a summary.json object (`format.row_dicts`): the one shape that both a
fresh VariantSummary and a summary.json file written by an older thinkcost can take.

Plugin metrics (metrics.plugins.METRICS) need no entry here: each registered metric becomes a
column before "frontier", shown where the rows carry its value (`VariantSummary.extra`). A
column that is not a per-row metric registers itself with `COLUMNS.register(key, order=N)`
on a `Column`; `order` places it (the built-ins are 10, 20, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..metrics.plugins import METRICS
from ..registry import Registry
from .format import ci, num, pct, row_dicts

Row = dict[str, Any]
Rows = list[Row]
When = Callable[[Rows], bool]  # given every row of the table: show the column?
VIEWS = ("table", "html")


# --- when a column is shown ----------------------------------------------------------------------
def always(rows: Rows) -> bool:
    return True


def never(rows: Rows) -> bool:
    return False


def multi_strategy(rows: Rows) -> bool:
    """Sampling columns (strategy, tokens per problem, frontier) mean nothing on a greedy-only run."""
    return any(r.get("strategy", "greedy") != "greedy" for r in rows)


def calibrated(rows: Rows) -> bool:
    """Calibration columns exist only for runs that recorded confidences (--confidence)."""
    return any(r.get("ece") is not None for r in rows)


def any_failed(rows: Rows) -> bool:
    return any(r.get("failed") for r in rows)


@dataclass(frozen=True)
class Column:
    """One summary column; `table` / `html` say when each view shows it."""

    header: str
    cell: Callable[[Row], str]
    sort: Callable[[Row], Any] | None = None  # the value HTML sorts by; None: sort by the text
    tip: str = ""  # the HTML header's tooltip
    table: When = always
    html: When = always

    @property
    def kind(self) -> str:
        """ "num" columns sort numerically in the page (report.js), "text" ones alphabetically."""
        return "text" if self.sort is None else "num"

    def shown(self, view: str, rows: Rows) -> bool:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; known: {', '.join(VIEWS)}")
        return getattr(self, view)(rows)


COLUMNS = Registry("report column")


# --- cells that need more than one field -------------------------------------------------------
def size_label(r: Row) -> str:
    """ " (5.00 b/w layers, 12.4 model)": both figures of README "b/w" (either may be missing in
    an older store), plus the file size for variants that are files (GGUF). The table view puts
    this after the variant name; the page has columns for it."""
    layers = r.get("bits_per_weight_layers") or r.get("bits_per_weight")
    model = r.get("bits_per_weight_model")
    parts = []
    if layers:
        parts.append(f"{layers:.2f} b/w layers")
    if model:
        parts.append(f"{model:.1f} model" if layers else f"{model:.2f} b/w model")
    if parts and (size := r.get("file_bytes")):
        parts.append(f"{size / 1e6:.0f} MB")
    return f" ({', '.join(parts)})" if parts else ""


def bits_per_weight(r: Row, part: str) -> Any:
    """The "layers" or "model" b/w of a row. A summary.json from before there were two figures
    has only `bits_per_weight`: the layers figure, but every tensor on GGUF rows (file_bytes set)."""
    if "bits_per_weight_layers" in r or "bits_per_weight_model" in r:
        return r.get(f"bits_per_weight_{part}")
    return r.get("bits_per_weight") if (part == "model") == bool(r.get("file_bytes")) else None


def _accuracy(r: Row) -> str:
    return f"{pct(r['accuracy'])}{ci(r['accuracy_ci'], '{:.0f}', 100)} {r['n_correct']}/{r['n']}"


def _model_bpw(r: Row) -> str:
    size = f" · {r['file_bytes'] / 1e6:.0f} MB" if r.get("file_bytes") else ""
    return num(bits_per_weight(r, "model")) + size


def _field(key: str, fmt: str = "{:.2f}", suffix: str = "") -> Callable[[Row], str]:
    """The cell of a plain number field."""
    return lambda r: num(r.get(key), fmt) + suffix


def _value(key: str) -> Callable[[Row], Any]:
    return lambda r: r.get(key)


_BUILTIN: list[tuple[str, Column]] = [
    (
        "variant",
        Column("variant", lambda r: r["name"] + size_label(r), tip="model variant", html=never),
    ),
    (
        "variant-name",  # the page shows the b/w and MB figures in columns of their own
        Column("variant", lambda r: r["name"], tip="model variant", table=never),
    ),
    (
        "strategy",
        Column("strategy", lambda r: r["strategy"], tip="decoding strategy", table=multi_strategy),
    ),
    (
        "bpw-layers",
        Column(
            "b/w layers",
            lambda r: num(bits_per_weight(r, "layers")),
            lambda r: bits_per_weight(r, "layers"),
            "bits per weight of the decoder blocks' Linear weights (q/k/v/o/gate/up/down), scales included",
            table=never,
        ),
    ),
    (
        "bpw-model",
        Column(
            "b/w model",
            _model_bpw,
            lambda r: bits_per_weight(r, "model"),
            "bits per weight over every parameter: embeddings, norms, LM head (file size for GGUF variants)",
            table=never,
        ),
    ),
    ("n", Column("n", lambda r: str(r["n"]), _value("n"), "problems compared", table=never)),
    (
        "accuracy",
        Column(
            "accuracy (95% CI)",
            _accuracy,
            _value("accuracy"),
            "accuracy with Wilson / bootstrap 95% CI; correct final answers / problems",
        ),
    ),
    (
        "reasoning-tok",
        Column(
            "reasoning tok",
            _field("mean_reasoning_tokens", "{:.0f}"),
            _value("mean_reasoning_tokens"),
            "mean reasoning tokens per sample",
        ),
    ),
    (
        "tok-problem",
        Column(
            "tok/problem",
            _field("tokens_per_problem", "{:.0f}"),
            _value("tokens_per_problem"),
            "every token the strategy generated, per problem",
            table=multi_strategy,
        ),
    ),
    (
        "ctir",
        Column(
            "CTIR joint (95% CI)",
            lambda r: num(r["ctir"]) + ci(r["ctir_ci"]) + f" n={r['ctir_n']}",
            _value("ctir"),
            "reasoning-token ratio vs the reference over problems both answer correctly",
        ),
    ),
    (
        "ctir-all",
        Column(
            "CTIR all (95% CI)",
            lambda r: num(r["ctir_all"]) + ci(r["ctir_all_ci"]),
            _value("ctir_all"),
            "reasoning-token ratio vs the reference over all problems",
        ),
    ),
    (
        "hit-cap",
        Column(
            "hit cap",
            lambda r: pct(r["truncated_share"]),
            _value("truncated_share"),
            "samples that hit max_new_tokens",
        ),
    ),
    (
        "tok-s",
        Column(
            "tok/s", _field("tokens_per_s", "{:.1f}"), _value("tokens_per_s"), "generated tokens per second"
        ),
    ),
    (
        "tok-correct",
        Column(
            "tok/correct",
            _field("tokens_per_correct", "{:.0f}"),
            _value("tokens_per_correct"),
            "tokens per correct answer",
        ),
    ),
    (
        "s-correct",
        Column(
            "s/correct",
            _field("s_per_correct", "{:.1f}"),
            _value("s_per_correct"),
            "seconds per correct answer",
        ),
    ),
    (
        "speed-up",
        Column(
            "speed-up",
            _field("effective_speedup", suffix="×"),
            _value("effective_speedup"),
            "reference's s/correct over this row's",
        ),
    ),
    # calibration of the returned answers' confidences: the table view only, as before the spec
    (
        "ece",
        Column(
            "ECE",
            _field("ece", "{:.3f}"),
            _value("ece"),
            "expected calibration error (10 equal-width bins)",
            table=calibrated,
            html=never,
        ),
    ),
    (
        "brier",
        Column(
            "Brier",
            _field("brier", "{:.3f}"),
            _value("brier"),
            "Brier score of the confidences",
            table=calibrated,
            html=never,
        ),
    ),
    (
        "auroc",
        Column(
            "AUROC",
            _field("auroc"),
            _value("auroc"),
            "AUROC of confidence for telling right from wrong answers",
            table=calibrated,
            html=never,
        ),
    ),
    (
        "no-conf",
        Column(
            "no conf.",
            lambda r: pct(r.get("confidence_missing")),
            _value("confidence_missing"),
            "answers without a stated confidence",
            table=calibrated,
            html=never,
        ),
    ),
    (
        "frontier",
        Column(
            "frontier",
            lambda r: "★" if r.get("pareto") else "",
            tip="on the accuracy-vs-tokens-per-problem Pareto frontier",
            table=multi_strategy,
        ),
    ),
    (
        "failed",
        Column(
            "failed",
            lambda r: str(r.get("failed", 0)),
            lambda r: r.get("failed", 0),
            "samples whose request finally failed (counted wrong; a rerun retries them)",
            table=never,
            html=any_failed,
        ),
    ),
]
for _i, (_key, _col) in enumerate(_BUILTIN):
    COLUMNS.register(_key, order=10 * (_i + 1))(_col)
METRIC_ORDER = COLUMNS.meta("frontier")["order"] - 5  # plugin metrics: after the built-in figures


def searched(rows: Rows) -> bool:
    """The PRM columns exist only where a step-level search (beam, dvts, pf, wbon) read rewards."""
    return any((r.get("prm_tokens_per_problem") or 0) > 0 for r in rows)


# the step-level search bill (one spec for both PRM figures): after tok/problem
for _key, _head, _field_name, _tip, _order in (
    (
        "prm-tok-problem",
        "PRM tok/problem",
        "prm_tokens_per_problem",
        "tokens the step scorer (PRM or the policy judging itself) read, per problem",
        91,
    ),
    (
        "flop-tok-problem",
        "FLOP-eq tok/problem",
        "flop_tokens_per_problem",
        "policy tokens + PRM tokens x (PRM parameters / policy parameters), per problem; the Pareto axis",
        92,
    ),
):
    COLUMNS.register(_key, order=_order)(
        Column(_head, _field(_field_name, "{:.0f}"), _value(_field_name), _tip, table=searched, html=searched)
    )


def metric_column(name: str) -> Column:
    """The column of registered metric `name`, shown where rows carry its value."""
    meta = METRICS.meta(name)
    fmt = meta.get("fmt", "{:.2f}")

    def value(r: Row) -> Any:
        return (r.get("extra") or {}).get(name)

    def carried(rows: Rows) -> bool:
        return any(name in (r.get("extra") or {}) for r in rows)

    return Column(
        meta.get("header", name),
        lambda r: num(value(r), fmt),
        value,
        meta.get("tip", f"metric {name}"),
        table=carried,
        html=carried,
    )


def columns() -> list[Column]:
    """Every column, in display order: the registered ones by `order`, metrics (by name) at
    METRIC_ORDER."""
    keyed = [(COLUMNS.meta(k).get("order", METRIC_ORDER), 0, k, COLUMNS.get(k)) for k in COLUMNS.names()]
    keyed += [(METRIC_ORDER, 1, m, metric_column(m)) for m in METRICS.names()]
    return [c for *_, c in sorted(keyed, key=lambda t: t[:3])]


def columns_for(view: str, rows: Rows) -> list[Column]:
    """The columns `view` shows for these rows. Two with one header would overwrite each other's
    cells (a metric named like a built-in column): refused, naming the header."""
    cols = [c for c in columns() if c.shown(view, rows)]
    seen: set[str] = set()
    for c in cols:
        if c.header in seen:
            raise ValueError(f"two {view} columns are headed {c.header!r}: give the metric another header")
        seen.add(c.header)
    return cols


def display_cells(rows: Iterable[Any], view: str = "table") -> list[dict[str, str]]:
    """Formatted cells, header -> text, one dict per row: what `view` prints."""
    rs = row_dicts(rows)
    cols = columns_for(view, rs)
    return [{c.header: c.cell(r) for c in cols} for r in rs]
