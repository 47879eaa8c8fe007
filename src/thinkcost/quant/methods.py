"""Quantization methods by name: the one registry, the variant grammar read from it, and every
method as the layer solver `thinkcost quantize` exports.

A method is one module that registers its solve function, declaring what callers need:

    @QUANTIZERS.register("rtn", form="rtn-w{bits}g{group}[-asym][-head]", calibration=False)
    def quantize_rtn(w, bits, group_size, sym=True) -> QuantResult: ...

- `form`: the variant names that select it, and the grammar `parse_variant` compiles from it:
  `{bits}` and `{group}` are integers, `[-a]` an optional flag, `[-a|-b]` at most one of
  several; flags are written in the order the form lists them. A flag means `-asym`
  (asymmetric), `-head` (quantize the LM head too) or a column order (`-act` = act-order; an
  order may also be written in full, `-act-order`).
- `calibration`: False = weight only, `solve(W [out, in], bits, group_size, sym)` returns an
  object with `dequant` [out, in], applied to every Linear but the LM head (all of them with
  `-head`); `thinkcost quantize` can also write it as a GPTQ checkpoint when the object
  carries its grid, `scales` and `zeros` per group (`grid_layer`). True = `solve(W, H, cfg:
  GPTQConfig) -> QuantizedLayer` on the Hessians of calibration inputs, block by block
  (sequential.py).
- `orders`: the column orders it supports (`--order`, order flags); () = none, it rounds every
  weight on its own (any `--order` is ignored, as it always was for RTN).

This module imports nothing heavy: the built-in methods (rtn.py, gptq.py, babai.py; they import
torch) register the first time the registry is read, so the CLI imports `thinkcost.quant`
freely.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from typing import Any

from thinkcost.errors import UserError
from thinkcost.quant.bits import check_bits
from thinkcost.registry import Registry

# modules quant/<name>.py that register the method <name>; help and errors list them in this
# order (simplest first), then any other registered method by name
BUILTIN = ("rtn", "gptq", "babai")
ORDER_SHORT = {"act": "act-order"}  # short spellings of column orders in variant names


class _Methods(Registry):
    """A Registry that imports the built-in methods before it is first read, so it always lists
    them while importing this module stays torch-free."""

    _loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first, so a module reading the registry as it registers cannot recurse
        try:
            for name in BUILTIN:
                importlib.import_module(f"thinkcost.quant.{name}")
        except BaseException:
            self._loaded = False
            raise

    def get(self, name: str) -> Any:
        self._load()
        return super().get(name)

    def meta(self, name: str) -> dict[str, Any]:
        self._load()
        return super().meta(name)

    def names(self) -> list[str]:
        self._load()
        return super().names()

    def __contains__(self, name: object) -> bool:
        self._load()
        return super().__contains__(name)


QUANTIZERS: Registry = _Methods("quantizer")


@dataclass(frozen=True)
class QuantizerMeta:
    """What a method declares at registration (see the module docstring)."""

    form: str
    calibration: bool
    orders: tuple[str, ...] = ()
    summary: str = ""


def quantizer_meta(name: str) -> QuantizerMeta:
    """The registration of method `name`; a KeyError lists the known methods."""
    return QuantizerMeta(**QUANTIZERS.meta(name))


def method_names() -> list[str]:
    """Registered methods: the built-ins first, then the others by name."""
    names = QUANTIZERS.names()
    return [n for n in BUILTIN if n in names] + [n for n in names if n not in BUILTIN]


def column_orders() -> list[str]:
    """Every column order some method supports, in the order they were declared."""
    return list(dict.fromkeys(o for n in method_names() for o in quantizer_meta(n).orders))


@dataclass(frozen=True)
class VariantSpec:
    """One precision of a model, parsed once from its name so later code never re-parses it."""

    name: str
    method: str  # "base" | "ckpt" | a registered method ("rtn", "gptq", "babai", ...)
    bits: int | None = None
    group_size: int | None = None  # 0 = per output channel
    sym: bool = True
    include_lm_head: bool = False
    order: str = "natural"  # column order for gptq/babai: natural | act-order | reverse | min-pivot
    path: str | None = None  # ckpt:PATH

    @property
    def needs_calibration(self) -> bool:
        return self.method not in ("base", "ckpt") and quantizer_meta(self.method).calibration


_SLOT = re.compile(r"\{(bits|group)\}|\[([^\]]*)\]")  # {bits}, {group}, [-flag|-flag...]
_CKPT = re.compile(r"ckpt:(?P<path>.+)")  # a GPTQ checkpoint directory (checkpoint.py)


@functools.cache
def _grammar(method: str, form: str, orders: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, dict]]:
    """The regex of a form, and what each spelling of its flags sets on a VariantSpec."""
    parts: list[str] = []
    means: dict[str, dict] = {}  # spelling -> VariantSpec fields it sets
    pos = 0
    for i, m in enumerate(_SLOT.finditer(form)):
        parts.append(re.escape(form[pos : m.start()]))
        pos = m.end()
        if m[1]:
            parts.append(rf"(?P<{m[1]}>\d+)")
            continue
        spellings = []
        for choice in m[2].split("|"):
            word = choice.removeprefix("-")
            order = ORDER_SHORT.get(word, word)
            if not choice.startswith("-") or not word:
                raise ValueError(
                    f"quantizer {method!r}: form {form!r}: expected [-flag|-flag...], got [{m[2]}]"
                )
            if word in ("asym", "head"):
                means[word] = {"sym": False} if word == "asym" else {"include_lm_head": True}
                spellings.append(word)
            elif order in orders:
                means[word] = means[order] = {"order": order}
                spellings += [word, order]
            else:
                raise ValueError(
                    f"quantizer {method!r}: form {form!r}: flag {choice!r} is not -asym, -head or one of "
                    f"its orders ({', '.join(orders) or 'none declared'})"
                )
        alternatives = "|".join(sorted(map(re.escape, set(spellings)), key=len, reverse=True))
        parts.append(rf"(?:-(?P<flag{i}>{alternatives}))?")
    parts.append(re.escape(form[pos:]))
    pattern = re.compile("".join(parts))
    if not {"bits", "group"} <= set(pattern.groupindex):
        raise ValueError(f"quantizer {method!r}: form {form!r} needs both {{bits}} and {{group}}")
    return pattern, means


def parse_variant(name: str) -> VariantSpec:
    """Validate a variant name from a spec or flag, failing with one line that shows the forms."""
    if name == "base":
        return VariantSpec(name=name, method="base")
    methods = [(n, quantizer_meta(n)) for n in method_names()]
    for method, meta in methods:
        pattern, means = _grammar(method, meta.form, meta.orders)
        m = pattern.fullmatch(name)
        if m is None:
            continue
        fields: dict[str, Any] = {}
        for group, value in m.groupdict().items():
            if group.startswith("flag") and value is not None:
                fields |= means[value]
        bits = check_bits(int(m["bits"]), field=f"variant {name!r}")  # any FAKE_QUANT_BITS width
        return VariantSpec(name=name, method=method, bits=bits, group_size=int(m["group"]), **fields)
    if m := _CKPT.fullmatch(name):
        return VariantSpec(name=name, method="ckpt", path=m["path"])
    forms = ["base", *(meta.form for _, meta in methods), "ckpt:PATH"]
    raise UserError(f"unknown variant {name!r}; expected {' or '.join(forms)}")


# ---------------------------------------------------------------- methods as layer solvers
