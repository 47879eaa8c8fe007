"""The distillation loop: token-level KL(teacher || student) on the teacher's own traces
(optionally + cross-entropy on them), with checkpoints a killed run resumes from exactly.

Resume contract: a checkpoint holds the student's trainable tensors, the optimizer state, the
torch RNG state and the data cursor (the step), written atomically every `checkpoint_every`
steps. The data order is a function of (seed, epoch) only (data.epoch_order), so a run killed
at any point and rerun reproduces the loss curve of an uninterrupted run step for step: the
steps after the last checkpoint are recomputed, and their log rows replaced.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from thinkcost.errors import UserError
from thinkcost.recover.data import Trace, epoch_order
from thinkcost.recover.fakequant import FakeQuantLinear

LOSSES = ("kd", "kd+ce")
MODES = ("qat", "lora")
LOG_FIELDS = ("step", "epoch", "loss", "kl", "ce", "tokens", "tokens_per_s", "seconds", "lr")


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the loop; a resumed run must have the same ones (checked)."""

    mode: str = "qat"
    loss: str = "kd"
    steps: int = 100
    batch_size: int = 4  # traces per optimizer step (gradients accumulated)
    lr: float = 1e-5
    scale_lr: float | None = None  # learnable scales' rate (default: lr)
    learn_scales: bool = False
    lora_rank: int = 16
    lora_alpha: float | None = None
    ce_weight: float = 1.0
    temperature: float = 1.0
    max_seq_len: int = 1024
    checkpoint_every: int = 25
    seed: int = 0

    def check(self) -> None:
        """Reject a bad flag before any model is loaded, naming it."""
        if self.mode not in MODES:
            raise UserError(f"--mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if self.loss not in LOSSES:
            raise UserError(f"--loss: expected one of {', '.join(LOSSES)}, got {self.loss!r}")
        for flag, v, least in (
            ("--steps", self.steps, 1),
            ("--batch-size", self.batch_size, 1),
            ("--checkpoint-every", self.checkpoint_every, 1),
            ("--max-seq-len", self.max_seq_len, 8),
            ("--seed", self.seed, 0),
        ):
            if v < least:
                raise UserError(f"{flag}: expected an integer >= {least}, got {v}")
        if self.mode == "lora" and self.lora_rank < 1:
            raise UserError(f"--lora-rank: expected >= 1 with --mode lora, got {self.lora_rank}")
        for flag, v in (("--lr", self.lr), ("--temperature", self.temperature)):
            if not (v > 0 and math.isfinite(v)):
                raise UserError(f"{flag}: expected a positive number, got {v}")

    @property
    def adapter_rank(self) -> int:
        return self.lora_rank if self.mode == "lora" else 0


def trace_batch(step: int, batch_size: int, n: int, seed: int) -> list[tuple[int, int]]:
    """(epoch, trace index) of each trace of optimizer step `step` (0-based)."""
    out = []
    for k in range(step * batch_size, (step + 1) * batch_size):
        epoch, pos = divmod(k, n)
        out.append((epoch, epoch_order(n, seed, epoch)[pos]))
    return out


def completion_logits(model: nn.Module, trace: Trace, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits at the positions that predict the completion tokens, and those tokens.

    Only the last len(completion) + 1 positions go through the LM head (`logits_to_keep`): the
    vocabulary projection of the prompt positions would be thrown away."""
    ids = list(trace.prompt_ids + trace.completion_ids)[:max_len]
    n_c = len(ids) - len(trace.prompt_ids)
    if n_c < 1:
        raise UserError(f"trace {trace.problem_id!r}: the prompt alone fills --max-seq-len {max_len}")
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    logits = model(input_ids=x, logits_to_keep=n_c + 1).logits[0, :-1].float()  # [n_c, vocab]
    return logits, x[0, -n_c:]


def kd_losses(t_logits: torch.Tensor, s_logits: torch.Tensor, target: torch.Tensor, temperature: float = 1.0):
    """Mean over tokens of KL(p_teacher || p_student) at `temperature`, and the student's CE."""
    t_logp = F.log_softmax(t_logits / temperature, dim=-1)
    s_logp = F.log_softmax(s_logits / temperature, dim=-1)
    kl = (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean()
    ce = F.cross_entropy(s_logits, target)
    return kl, ce


def trainable(student: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in student.named_parameters() if p.requires_grad]


def make_optimizer(student: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = trainable(student)
    if not params:
        raise UserError("the student has no trainable parameters (no quantized layer?)")
    scales = [p for n, p in params if n.endswith(".scales")]
    rest = [p for n, p in params if not n.endswith(".scales")]
    groups = [{"params": rest, "lr": cfg.lr}]
    if scales:
        groups.append({"params": scales, "lr": cfg.scale_lr or cfg.lr})
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=0.0)


# ---------------------------------------------------------------- checkpoints


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_state(
    state_dir: Path, student: nn.Module, opt, step: int, cfg: TrainConfig, fingerprint: dict
) -> None:
    """One training checkpoint: trainable tensors, optimizer, RNG, cursor, config."""
    state_dir.mkdir(parents=True, exist_ok=True)
    blob = {
        "step": step,
        "params": {n: p.detach().cpu().clone() for n, p in trainable(student)},
        "optimizer": opt.state_dict(),
        "rng": torch.get_rng_state(),
        "config": asdict(cfg),
        "fingerprint": fingerprint,
    }
    _atomic_save(blob, state_dir / "state.pt")


def load_state(state_dir: Path, student: nn.Module, opt, cfg: TrainConfig, fingerprint: dict) -> int:
    """Restore a checkpoint into `student`/`opt`; returns the step to continue from (0: none)."""
    f = state_dir / "state.pt"
    if not f.is_file():
        return 0
    blob = torch.load(f, weights_only=False)
    if blob["config"] != asdict(cfg) or blob["fingerprint"] != fingerprint:
        diff = sorted(
            k for k in set(blob["config"]) | set(asdict(cfg)) if blob["config"].get(k) != asdict(cfg).get(k)
        ) or ["model/variant/data"]
        raise UserError(
            f"{state_dir}: a training checkpoint made with other settings ({', '.join(diff)}) is here; "
            "rerun with the same flags to resume, or pick a new -o directory"
        )
    params = dict(trainable(student))
    with torch.no_grad():
        for n, t in blob["params"].items():
            params[n].copy_(t)
    opt.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["rng"])
    return int(blob["step"])


def _read_log(path: Path, upto: int) -> list[dict]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["step"] <= upto]


# ---------------------------------------------------------------- the loop


def train(
    teacher: nn.Module,
    student: nn.Module,
    traces: Sequence[Trace],
    cfg: TrainConfig,
    work_dir: Path,
    *,
    fingerprint: dict | None = None,
    on_step: Callable[[dict], None] | None = None,
    progress: Any = None,
) -> list[dict]:
    """Train `student` towards `teacher` for cfg.steps steps; returns the log rows (one per
    step, identical whether or not the run was interrupted and resumed)."""
    cfg.check()
    if not traces:
        raise UserError("no training traces: the teacher answered none of the training problems correctly")
    fingerprint = fingerprint or {}
    work_dir.mkdir(parents=True, exist_ok=True)
    state_dir, log_path = work_dir / "train_state", work_dir / "train_log.jsonl"
    torch.manual_seed(cfg.seed)
    teacher.eval()
    student.train()
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = make_optimizer(student, cfg)
    start = load_state(state_dir, student, opt, cfg, fingerprint)
    log = _read_log(log_path, start)
    log_path.write_text("".join(json.dumps(r) + "\n" for r in log))
    task = progress.add_task("recover", total=cfg.steps, completed=start, loss=math.nan) if progress else None
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        kl_sum = ce_sum = loss_sum = 0.0
        n_tok = 0
        batch = trace_batch(step, cfg.batch_size, len(traces), cfg.seed)
        for _, i in batch:
            tr = traces[i]
            with torch.no_grad():
                t_logits, _ = completion_logits(teacher, tr, cfg.max_seq_len)
            s_logits, target = completion_logits(student, tr, cfg.max_seq_len)
            kl, ce = kd_losses(t_logits, s_logits, target, cfg.temperature)
            loss = kl + (cfg.ce_weight * ce if cfg.loss == "kd+ce" else 0.0)
            (loss / len(batch)).backward()
            kl_sum, ce_sum, loss_sum = kl_sum + kl.item(), ce_sum + ce.item(), loss_sum + float(loss.detach())
            n_tok += int(target.numel())
        opt.step()
        dt = time.perf_counter() - t0
        row = {
            "step": step + 1,
            "epoch": batch[-1][0],
            "loss": loss_sum / len(batch),
            "kl": kl_sum / len(batch),
            "ce": ce_sum / len(batch),
            "tokens": n_tok,
            "tokens_per_s": n_tok / dt if dt > 0 else math.nan,
            "seconds": dt,
            "lr": cfg.lr,
        }
        log.append(row)
        with open(log_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_state(state_dir, student, opt, step + 1, cfg, fingerprint)
        if progress is not None:
            progress.update(task, completed=step + 1, loss=row["loss"])
        if on_step is not None:
            on_step(row)
    write_log_files(work_dir, log)
    return log


def write_log_files(work_dir: Path, log: list[dict]) -> None:
    """train_log.json and train_log.csv: the finished curve, one row per step."""
    import csv

    (work_dir / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    with open(work_dir / "train_log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(LOG_FIELDS))
        w.writeheader()
        w.writerows(log)


def fake_quant_layers(model: nn.Module) -> dict[str, FakeQuantLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, FakeQuantLinear)}
