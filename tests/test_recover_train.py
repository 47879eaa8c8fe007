"""The distillation loop and its data: KD loss goes down, kill-and-resume replays the same
curve, train/eval overlap is refused."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from recover_models import random_traces, tiny_qwen2
from synthetic_store import Sample, build_store
from thinkcost.errors import UserError
from thinkcost.quant.methods import parse_variant
from thinkcost.recover import data
from thinkcost.recover.student import make_student_, variant_grids
from thinkcost.recover.train import TrainConfig, completion_logits, kd_losses, train
from thinkcost.tasks import get_task


@pytest.fixture(scope="module")
def setup():
    teacher = tiny_qwen2(seed=3, init=0.15)
    return teacher, random_traces(teacher.config.vocab_size)


def student_of(teacher, variant="rtn-w2g32", **kw):
    s = copy.deepcopy(teacher)
    make_student_(s, variant_grids(s, parse_variant(variant)), **kw)
    return s


def mean_kl(teacher, student, traces) -> float:
    with torch.no_grad():
        kls = [
            kd_losses(completion_logits(teacher, t, 64)[0], *completion_logits(student, t, 64))[0].item()
            for t in traces
        ]
    return sum(kls) / len(kls)


@pytest.mark.parametrize(("mode", "lr", "steps"), [("qat", 3e-3, 5), ("lora", 5e-2, 1)])
def test_kd_loss_decreases(tmp_path, setup, mode, lr, steps):
    """Full-batch steps (all 4 traces), so the KL after training is the loop's own objective.
    Adam moves every latent weight by about lr per step: codes flip only once the moves add
    up to half a grid step, hence 5 small steps for qat (more would overshoot at this lr)."""
    teacher, traces = setup
    student = student_of(teacher, "rtn-w4g32", lora_rank=8 if mode == "lora" else 0)
    before = mean_kl(teacher, student, traces)
    cfg = TrainConfig(mode=mode, loss="kd", steps=steps, batch_size=4, lr=lr, lora_rank=8)
    log = train(teacher, student, traces, cfg, tmp_path)
    after = mean_kl(teacher, student, traces)
    assert before > 0.05  # 4-bit weights of a peaky random model: a real gap to close
    assert after < 0.85 * before
    assert log[0]["kl"] == pytest.approx(before)
    assert [r["step"] for r in log] == list(range(1, steps + 1))
    assert json.loads((tmp_path / "train_log.json").read_text()) == log
    header = (tmp_path / "train_log.csv").read_text().splitlines()[0]
    assert header.split(",")[:5] == ["step", "epoch", "loss", "kl", "ce"]


class Killed(Exception):
    pass


def test_kill_and_resume_gives_the_same_loss_curve(tmp_path, setup):
    teacher, traces = setup
    cfg = TrainConfig(steps=6, batch_size=3, lr=1e-2, checkpoint_every=2)
    ref_student = student_of(teacher)
    ref = train(teacher, ref_student, traces, cfg, tmp_path / "ref")

    def kill_at_5(row):
        if row["step"] == 5:  # after the step-4 checkpoint and one more step: that step is lost
            raise Killed

    with pytest.raises(Killed):
        train(teacher, student_of(teacher), traces, cfg, tmp_path / "run", on_step=kill_at_5)
    assert len((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()) == 5
    resumed_student = student_of(teacher)  # a fresh process: the student starts from the variant again
    resumed = train(teacher, resumed_student, traces, cfg, tmp_path / "run")
    assert [r["loss"] for r in resumed] == [r["loss"] for r in ref]
    assert [r["kl"] for r in resumed] == [r["kl"] for r in ref]
    for (n, a), (_, b) in zip(
        ref_student.named_parameters(), resumed_student.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), n
    # a rerun with other settings must not resume this curve
    with pytest.raises(UserError, match="lr"):
        train(
            teacher,
            student_of(teacher),
            traces,
            TrainConfig(steps=6, batch_size=3, lr=5e-3, checkpoint_every=2),
            tmp_path / "run",
        )


def test_data_order_is_a_seeded_permutation_per_epoch():
    a, b = data.epoch_order(10, 0, 0), data.epoch_order(10, 0, 1)
    assert sorted(a) == list(range(10)) and a != b
    assert data.epoch_order(10, 0, 0) == a and data.epoch_order(10, 1, 0) != a


def test_training_split_never_overlaps_the_evaluated_problems():
    task = get_task("arithmetic")
    evaluated = task.problems(50, 0)
    train_p, dropped = data.training_problems(task, 50, 0, evaluated)
    keys = {data.prompt_key(p.messages) for p in evaluated}
    assert len(train_p) == 50 and not keys & {data.prompt_key(p.messages) for p in train_p}
    with pytest.raises(UserError, match="evaluation seed"):
        data.training_problems(task, 5, 0, evaluated, train_seed=0)
    # a split that happens to contain evaluated problems drops them, and counts them
    same, dropped = data.training_problems(task, 5, 7, evaluated[:3], train_seed=0)
    assert dropped == 3 and [p.id for p in same] == [f"arith-{i:06d}" for i in range(3, 8)]
    assert not keys & {data.prompt_key(p.messages) for p in train_p}


def test_overlapping_training_data_is_refused(tmp_path):
    task = get_task("arithmetic")
    evaluated = task.problems(5, 0)
    with pytest.raises(UserError, match="1 training problem"):
        data.check_no_overlap(
            [("t1", task.problem(9, 99).messages), ("t2", evaluated[2].messages)], evaluated, "--data x"
        )
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"id": "a", "messages": evaluated[0].messages, "completion": "42"}) + "\n")
    with pytest.raises(UserError, match="evaluated problems too"):
        data.traces_from_file(f, None, None, evaluated)
    f.write_text('{"id": "a"}\n')
    with pytest.raises(UserError, match=r"d.jsonl:1: expected"):
        data.traces_from_file(f, None, None, evaluated)


def test_store_traces_use_correct_teacher_rows_and_refuse_overlap(tmp_path):
    from synthetic_store import problem

    st = build_store(
        tmp_path / "s.sqlite",
        [
            Sample("base", "p1", True, 10, 1.0),
            Sample("base", "p2", False, 10, 1.0),
            Sample("rtn", "p1", True, 9, 1.0),
        ],
        ["p1", "p2"],
    )

    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return type("E", (), {"input_ids": [len(w) for w in text.split()]})()

    got = data.traces_from_store(st, Tok(), lambda m: m[-1]["content"], [], eos=" END")
    assert [t.problem_id for t in got] == ["p1"]  # p2's teacher answer was wrong
    assert got[0].completion_ids[-1] == 3  # closed by the EOS text
    with pytest.raises(UserError, match="evaluated problems too"):
        data.traces_from_store(st, Tok(), lambda m: "", [problem("p1")])
    with pytest.raises(UserError, match="no variant 'gptq'"):
        data.traces_from_store(st, Tok(), lambda m: "", [], variant="gptq")


def test_recover_cli_rejects_bad_flags_before_loading(tmp_path):
    from thinkcost.recover.job import RecoverJob

    for job, msg in (
        (RecoverJob("m", "base", tmp_path / "o"), "nothing to recover"),
        (RecoverJob("m", "rtn-w3g32", tmp_path / "o", train=TrainConfig(mode="full")), "--mode"),
        (RecoverJob("m", "rtn-w3g32", tmp_path / "o", backend="tensorrt"), "--backend"),
        (RecoverJob("m", "rtn-w3g32", tmp_path / "o", from_store=tmp_path, data=tmp_path), "give one"),
    ):
        with pytest.raises(UserError, match=msg):
            job.check()
