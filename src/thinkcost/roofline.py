"""How fast this machine could decode, so a measured tok/s can be read as "% of roofline".

A decode step reads every weight matrix once (whatever the batch) plus each sequence's KV
cache, and does ~2 FLOPs per weight per sequence plus the attention products. Its time is at
least max(bytes / memory bandwidth, FLOPs / matmul peak): batch 1 is bandwidth-bound, a large
batch compute-bound. `measure_machine` times the two denominators here (torch, this thread
count); `ModelShape` counts the numerators from a transformers config; `roofline` combines
them. `thinkcost doctor --bench` saves the machine figures in `$THINKCOST_HOME` so
benchmarks read them instead of re-measuring. torch is imported only inside the measuring
functions: counting and the roofline math are plain arithmetic.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import UserError
from .models import cache_dir

BENCH_FILE = "machine_bench.json"
BENCH_VERSION = 1
GIB = 1 << 30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# (label, m, k, n): decode-like GEMMs of the default model (hidden 896 -> intermediate 4864)
# at batch 1 / 16 / 64, and one large square GEMM that shows the kernel's peak.
MATMUL_SHAPES: tuple[tuple[str, int, int, int], ...] = (
    ("decode b1", 1, 896, 4864),
    ("decode b16", 16, 896, 4864),
    ("decode b64", 64, 896, 4864),
    ("square 2048", 2048, 2048, 2048),
)


@dataclass(frozen=True)
class MatmulFigure:
    dtype: str
    label: str
    m: int
    k: int
    n: int
    gflops: float  # 2*m*k*n / best seconds / 1e9


@dataclass(frozen=True)
class MachineFigures:
    """What `doctor --bench` measured: read bandwidth (GB/s, 1e9 bytes) and matmul GFLOP/s."""

    threads: int
    bandwidth_gbs: float
    matmuls: tuple[MatmulFigure, ...]
    buffer_bytes: int = GIB
    torch: str = ""
    cpu: str = ""
    measured_at: str = ""
    version: int = BENCH_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def peak_gflops(self, dtype: str) -> float:
        """The best measured matmul rate for `dtype`: a roofline is an upper bound."""
        rates = [m.gflops for m in self.matmuls if m.dtype == dtype]
        if not rates:
            measured = sorted({m.dtype for m in self.matmuls})
            raise ValueError(f"no matmul figure for dtype {dtype!r}; measured: {', '.join(measured)}")
        return max(rates)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MachineFigures:
        return cls(**{**data, "matmuls": tuple(MatmulFigure(**m) for m in data["matmuls"])})


def _best_seconds(fn, reps: int, min_s: float = 0.05) -> tuple[float, int]:
    """Best wall time of `fn` over `reps` repetitions, each looping it enough times to last
    about `min_s` (a single small GEMM is shorter than the timer's noise). -> (s per call, loops)."""
    fn()  # warm-up: first-call allocation and kernel selection
    t = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t, 1e-7)
    loops = max(1, int(min_s / once))
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t) / loops)
    return best, loops


def measure_bandwidth(buffer_bytes: int = GIB, reps: int = 5) -> float:
    """Memory read bandwidth in GB/s: torch sums a float32 buffer far larger than any cache,
    so every byte comes from DRAM; best of `reps`."""
    import torch

    x = torch.ones(buffer_bytes // 4, dtype=torch.float32)
    seconds, _ = _best_seconds(lambda: x.sum(), reps, min_s=0.0)
    return x.numel() * 4 / seconds / 1e9


def measure_matmul(
    dtype: str, shapes: tuple[tuple[str, int, int, int], ...] = MATMUL_SHAPES, reps: int = 5
) -> list[MatmulFigure]:
    """GFLOP/s of `a[m,k] @ b[k,n]` in `dtype` for each shape, best of `reps`."""
    import torch

    tdtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(0)
    out = []
    for label, m, k, n in shapes:
        a = torch.randn(m, k, generator=gen).to(tdtype)
        b = torch.randn(k, n, generator=gen).to(tdtype)
        seconds, _ = _best_seconds(lambda a=a, b=b: torch.mm(a, b), reps)
        out.append(MatmulFigure(dtype, label, m, k, n, 2 * m * k * n / seconds / 1e9))
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_machine(
    threads: int | None = None,
    buffer_bytes: int = GIB,
    dtypes: tuple[str, ...] = ("float32", "bfloat16"),
    shapes: tuple[tuple[str, int, int, int], ...] = MATMUL_SHAPES,
) -> MachineFigures:
    """Bandwidth and matmul figures with `threads` torch threads (default: torch's own count,
    which is what the engines use), restoring the thread count afterwards."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        bw = measure_bandwidth(buffer_bytes)
        mms = [f for d in dtypes for f in measure_matmul(d, shapes)]
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    return MachineFigures(
        threads=used,
        bandwidth_gbs=bw,
        matmuls=tuple(mms),
        buffer_bytes=buffer_bytes,
        torch=torch.__version__,
        cpu=_cpu_name(),
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def bench_path() -> Path:
    return cache_dir() / BENCH_FILE


def save_machine(figures: MachineFigures, path: Path | None = None) -> Path:
    """Write the figures as JSON (atomically: a benchmark reading it never sees half a file)."""
    path = path or bench_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(figures.to_json(), indent=2) + "\n")
    tmp.replace(path)
    return path


def load_machine(path: Path | None = None) -> MachineFigures | None:
    """The figures `doctor --bench` saved, or None when it has not run on this machine yet."""
    path = path or bench_path()
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("version") != BENCH_VERSION:
            return None  # an older layout: re-measure rather than misread it
        return MachineFigures.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise UserError(
            f"{path}: not a thinkcost machine benchmark ({type(e).__name__}: {e}); "
            "rerun `thinkcost doctor --bench` to rewrite it"
        ) from e


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer (Llama/Qwen2 layout: GQA attention, gated MLP)
    that decide bytes and FLOPs per decode step."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    head_dim: int
    tied: bool  # lm_head shares the embedding matrix
    qkv_bias: bool

    @classmethod
    def from_config(cls, cfg: Any) -> ModelShape:
        """From a transformers config. Qwen2 hard-codes q/k/v biases; Llama-style configs say
        so in `attention_bias`."""
        heads = cfg.num_attention_heads
        bias = getattr(cfg, "attention_bias", None)
        if bias is None:
            bias = getattr(cfg, "model_type", "") in ("qwen2",)
        return cls(
            hidden=cfg.hidden_size,
            intermediate=cfg.intermediate_size,
            layers=cfg.num_hidden_layers,
            heads=heads,
            kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
            vocab=cfg.vocab_size,
            head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // heads,
            tied=bool(getattr(cfg, "tie_word_embeddings", False)),
            qkv_bias=bool(bias),
        )

    def block_matmul_weights(self) -> int:
        """Weight elements of one block's linear layers (q, k, v, o, gate, up, down)."""
        q_o = 2 * self.hidden * self.heads * self.head_dim
        k_v = 2 * self.hidden * self.kv_heads * self.head_dim
        return q_o + k_v + 3 * self.hidden * self.intermediate

    def matmul_weights(self) -> int:
        """Weight elements every decode step multiplies by: all blocks plus the lm_head."""
        return self.layers * self.block_matmul_weights() + self.vocab * self.hidden

    def parameters(self) -> int:
        """All parameters, a tied lm_head counted once (as `model.num_parameters()` does)."""
        bias = (self.heads + 2 * self.kv_heads) * self.head_dim if self.qkv_bias else 0
        block = self.block_matmul_weights() + bias + 2 * self.hidden  # + two RMSNorm weights
        lm_head = 0 if self.tied else self.vocab * self.hidden
        return self.vocab * self.hidden + self.layers * block + self.hidden + lm_head

    def weights_read_per_step(self) -> int:
        """Parameter elements a decode step reads: everything but an untied embedding table,
        of which it reads only the batch's rows (negligible, not counted)."""
        return self.parameters() - (0 if self.tied else self.vocab * self.hidden)

    def kv_values(self, context: float) -> float:
        """KV-cache elements one sequence reads per step when attending to `context` tokens."""
        return 2 * self.layers * self.kv_heads * self.head_dim * context

    def flops_per_token(self, context: float) -> float:
        """Multiply-adds x 2 for one new token attending to `context` tokens: the linear layers,
        then per layer q.k over the context and the weighted sum of values (GQA shares k/v
        between heads, not the products: each query head does its own)."""
        return 2 * self.matmul_weights() + 4 * self.layers * self.heads * self.head_dim * context


@dataclass(frozen=True)
class Roofline:
    tok_s: float  # the most tokens per second this batch could decode on this machine
    step_s: float  # lower bound of one decode step
    bound: str  # "bandwidth" or "compute"
    bytes_per_step: float
    flops_per_step: float


def roofline(
    shape: ModelShape,
    machine: MachineFigures,
    batch: int,
    context: float,
    dtype: str = "float32",
    bits_per_weight: float | None = None,
) -> Roofline:
    """Roofline of one decode step: max(bytes / bandwidth, FLOPs / matmul peak), where bytes =
    weights once + each sequence's KV cache and FLOPs = batch x FLOPs per token. `dtype` is the
    compute and KV dtype; `bits_per_weight` overrides the weight size (quantized weights)."""
    if batch < 1:
        raise ValueError(f"batch: expected >= 1, got {batch}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    value_bytes = DTYPE_BYTES[dtype]
    weight_bytes = value_bytes if bits_per_weight is None else bits_per_weight / 8
    nbytes = shape.weights_read_per_step() * weight_bytes + batch * shape.kv_values(context) * value_bytes
    flops = batch * shape.flops_per_token(context)
    t_mem = nbytes / (machine.bandwidth_gbs * 1e9)
    t_cmp = flops / (machine.peak_gflops(dtype) * 1e9)
    step = max(t_mem, t_cmp)
    return Roofline(batch / step, step, "bandwidth" if t_mem >= t_cmp else "compute", nbytes, flops)


def percent_of_roofline(tok_s: float, roof: Roofline) -> float:
    """Measured throughput as a share of the roofline (100 = the machine's limit)."""
    return 100.0 * tok_s / roof.tok_s
