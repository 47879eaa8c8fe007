"""Training data for recovery: the base model's correct traces on problems that are never
evaluated, tokenized once, in a seeded order.

Two sources: a thinkcost store's correct rows of the teacher variant (`--from-store`), or
traces generated on the fly with the base model on a training split. For a procedural task the
split is the same generator under another seed (`seed + TRAIN_SEED_OFFSET`, distinct from the
calibration offset); for every source the prompts are compared with the evaluated problems' and
an overlap is a UserError: a recovered model that saw its test problems would report a repair
that is not there. (A generated split may coincide with an evaluated problem by chance, e.g. a
one-step story; such problems are dropped before generation and counted, never trained on.)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkcost.errors import UserError
from thinkcost.jsonl import read_jsonl
from thinkcost.types import Problem

TRAIN_SEED_OFFSET = 2_000_029  # training split of a procedural task (calibration uses 1_000_003)


@dataclass(frozen=True)
class Trace:
    """One teacher trace: the rendered prompt and the teacher's completion, as token ids."""

    problem_id: str
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def prompt_key(messages: Sequence[dict[str, str]]) -> str:
    """What makes two problems the same problem: their full chat messages."""
    return json.dumps([[m.get("role", ""), m.get("content", "")] for m in messages], sort_keys=True)


def check_no_overlap(
    train: Sequence[tuple[str, Sequence[dict]]], evaluated: Sequence[Problem], source: str
) -> None:
    """Refuse training problems whose prompt is an evaluated problem's (the hard error)."""
    eval_keys = {prompt_key(p.messages): p.id for p in evaluated}
    hits = [(pid, eval_keys[k]) for pid, m in train if (k := prompt_key(m)) in eval_keys]
    if hits:
        pid, eid = hits[0]
        raise UserError(
            f"{source}: {len(hits)} training problem(s) are evaluated problems too (e.g. {pid!r} = "
            f"evaluated {eid!r}); train on problems the evaluation never sees (another seed range, "
            "a train split, or --data)"
        )


def training_problems(
    task, n: int, eval_seed: int, evaluated: Sequence[Problem], train_seed: int | None = None
):
    """`n` training problems of a procedural task, from a seed range disjoint from the evaluated
    one; returns (problems, dropped) where `dropped` counts problems identical to evaluated ones."""
    seed = eval_seed + TRAIN_SEED_OFFSET if train_seed is None else train_seed
    if seed == eval_seed:
        raise UserError(
            f"--train-seed {seed} is the evaluation seed: the training split would be the evaluated problems"
        )
    eval_keys = {prompt_key(p.messages) for p in evaluated}
    out, dropped, i = [], 0, 0
    while len(out) < n:
        p = task.problem(i, seed)
        i += 1
        if prompt_key(p.messages) in eval_keys:
            dropped += 1
            continue
        out.append(p)
    return out, dropped


def encode(
    tok, render: Callable[[list[dict]], str], pid: str, messages: list[dict], completion: str, eos: str | None
) -> Trace:
    """Tokenize a prompt (chat-templated) and the teacher's completion, closed by the EOS text."""
    prompt_ids = tok(render(messages), add_special_tokens=False).input_ids
    text = completion + (eos or "")
    return Trace(pid, tuple(prompt_ids), tuple(tok(text, add_special_tokens=False).input_ids))


def traces_from_store(
    path: str | Path,
    tok,
    render: Callable[[list[dict]], str],
    evaluated: Sequence[Problem],
    *,
    variant: str = "base",
    run_id: str | None = None,
    eos: str | None = None,
    limit: int | None = None,
) -> list[Trace]:
    """The teacher's correct traces from a store (one per problem: its first correct sample)."""
    from thinkcost.store import Store

    p = Path(path)
    if not p.is_file():
        raise UserError(f"--from-store {str(p)!r} does not exist")
    st = Store(p, create=False)
    try:
        rid = run_id or st.latest_run_id()
        gens = st.generations(rid)
        probs = st.problems(rid)
    finally:
        st.close()
    if variant not in set(gens["variant"]):
        known = ", ".join(sorted(set(gens["variant"]))) or "none"
        raise UserError(f"--from-store {str(p)!r}: run {rid!r} has no variant {variant!r} (it has {known})")
    rows = gens[(gens["variant"] == variant) & (gens["correct"] == 1)].drop_duplicates("problem_id")
    messages = dict(zip(probs["problem_id"], probs["messages"], strict=True))
    check_no_overlap([(pid, messages[pid]) for pid in rows["problem_id"]], evaluated, f"--from-store {p}")
    if rows.empty:
        raise UserError(f"--from-store {str(p)!r}: variant {variant!r} has no correct rows to learn from")
    out = [
        encode(tok, render, pid, messages[pid], text, eos)
        for pid, text in zip(rows["problem_id"], rows["text"], strict=True)
    ]
    return out[:limit] if limit else out


def traces_from_file(
    path: str | Path, tok, render, evaluated: Sequence[Problem], eos: str | None = None
) -> list[Trace]:
    """`--data FILE`: JSONL rows {"id", "messages", "completion"} of teacher traces."""
    p = Path(path)
    rows: list[tuple[str, list[dict], str]] = []
    for n, r in read_jsonl(p, "--data"):
        if not isinstance(r.get("messages"), list) or not isinstance(r.get("completion"), str):
            raise UserError(f'{p}:{n}: expected {{"id", "messages": [...], "completion": "..."}}')
        rows.append((str(r.get("id", f"line-{n}")), r["messages"], r["completion"]))
    if not rows:
        raise UserError(f"--data {str(p)!r} holds no traces")
    check_no_overlap([(i, m) for i, m, _ in rows], evaluated, f"--data {p}")
    return [encode(tok, render, i, m, c, eos) for i, m, c in rows]


def generate_traces(
    engine, task, problems: Sequence[Problem], max_new_tokens: int, on_done=None
) -> list[tuple[Problem, Any]]:
    """Greedy completions of the base model on `problems`; returns the correct (problem, completion)."""
    from thinkcost.types import Request

    reqs = [Request(prompt_messages=p.messages, max_new_tokens=max_new_tokens) for p in problems]
    done = engine.generate(reqs, on_complete=on_done)
    return [
        (p, c)
        for p, c in zip(problems, done, strict=True)
        if c.finish_reason == "stop" and task.verify(p, c.answer_text).correct
    ]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order traces are visited in epoch `epoch`: a function of (seed, epoch) only, so a
    resumed run visits exactly what an uninterrupted one would have."""
    order = list(range(n))
    random.Random(f"recover:{seed}:{epoch}").shuffle(order)
    return order


def write_traces(path: Path, traces: Sequence[Trace]) -> None:
    """Cache tokenized traces (a rerun reuses them instead of generating again)."""
    path.write_text(
        "".join(json.dumps([t.problem_id, t.prompt_ids, t.completion_ids]) + "\n" for t in traces)
    )


def read_traces(path: Path) -> list[Trace]:
    out = []
    for line in path.read_text().splitlines():
        pid, p, c = json.loads(line)
        out.append(Trace(pid, tuple(p), tuple(c)))
    return out
