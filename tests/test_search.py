"""Step-level search: beam / DVTS / weighted best-of-N against hand-computed searches on a
scripted stepper and scorer, particle resampling against its softmax weights (chi-square),
KV-cache reuse of the hf stepper (forward tokens counted with a hook, continuations checked
against a cache-free decode), and the runner: trees stored, PRM cost charged, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from rich.console import Console
from scipy.stats import chisquare

from thinkcost.engines.hf_steps import HFStepper
from thinkcost.engines.steps import StepOut
from thinkcost.errors import UserError
from thinkcost.pipeline import run
from thinkcost.reasoning import NONE
from thinkcost.search.beam import beam_search
from thinkcost.search.dvts import dvts
from thinkcost.search.particle import particle_filter, resample, softmax_weights
from thinkcost.search.scorers import aggregate
from thinkcost.search.tree import SearchConfig
from thinkcost.search.weighted_bon import weighted_best_of_n
from thinkcost.spec import build_spec
from thinkcost.store import Store
from thinkcost.strategies import parse_strategy
from thinkcost.tasks import get_task
from thinkcost.types import Completion

MSGS = [{"role": "user", "content": "q"}]


class LabelStepper:
    """Child j of the node labelled L is labelled L + j, numbering on across expansions of L
    (the second expansion of the root makes a2, a3); a node at `depth` steps is finished."""

    separator = "\n\n"

    def __init__(self, depth: int = 2) -> None:
        self.depth = depth
        self.next: dict[str, int] = {}
        self.expansions: list[tuple[str, int]] = []

    def root(self, messages):
        return "a"

    def expand(self, state, k, *, seed, temperature, top_p, max_new_tokens):
        self.expansions.append((state, k))
        start = self.next.get(state, 0)
        self.next[state] = start + k
        kids = [state + str(start + j) for j in range(k)]
        return [StepOut(kid, kid, 2, 0.0, "stop" if len(kid) - 1 >= self.depth else None) for kid in kids]

    def completion(self, state, finish, *, completion_tokens, cost_s):
        return Completion(state, "", state[-1], 0, completion_tokens, 0, 1, finish, cost_s, 0.0, cost_s)


class TableScorer:
    """Reward of a step = the table's entry for its label; reads one token per step scored."""

    name, params = "table", None

    def __init__(self, table):
        self.table, self.tokens = table, 0

    def cost(self):
        return self.tokens, 0.0

    def score_steps(self, question, steps):
        self.tokens += len(steps)
        return [self.table[s] for s in steps]


TABLE = {
    "a0": 0.1, "a1": 0.9, "a2": 0.5, "a3": 0.7,
    "a10": 0.2, "a11": 0.85, "a30": 0.88, "a31": 0.3,
}  # fmt: skip


def _labels(res, survived=None):
    return [n.text for n in res.nodes[1:] if survived is None or n.survived == survived]


def test_beam_search_keeps_the_top_n_over_m_and_expands_each_m_ways():
    st = LabelStepper()
    res = beam_search(MSGS, SearchConfig(n=4, m=2), st, TableScorer(TABLE))
    # root -> a0..a3 (4 candidates); keep the 2 best (a1 .9, a3 .7), each expanded 2 ways; all finish
    assert st.expansions == [("a", 4), ("a1", 2), ("a3", 2)]
    assert _labels(res) == ["a0", "a1", "a2", "a3", "a10", "a11", "a30", "a31"]
    assert set(_labels(res, survived=True)) == {"a1", "a3", "a30"}
    assert res.final.text == "a30"  # best last-step reward among finished: .88
    # min aggregation: a11's path (min .9, .85) beats a30's (min .7, .88)
    res = beam_search(MSGS, SearchConfig(n=4, m=2, agg="min"), LabelStepper(), TableScorer(TABLE))
    assert res.final.text == "a11"
    assert res.final.reward == pytest.approx(0.85)


def test_dvts_grows_independent_greedy_subtrees():
    st = LabelStepper()
    res = dvts(MSGS, SearchConfig(n=4, m=2), st, TableScorer(TABLE))
    # subtree 1: root -> a0, a1 (keep a1) -> a10, a11 (keep a11); subtree 2: root -> a2, a3
    # (keep a3) -> a30, a31 (keep a30); the answer is the best leaf: a30 (.88 > .85)
    assert st.expansions == [("a", 2), ("a", 2), ("a1", 2), ("a3", 2)]
    assert set(_labels(res, survived=True)) == {"a1", "a11", "a3", "a30"}
    assert res.final.text == "a30"
    assert res.prm_tokens == 4 * 1 + 4 * 2  # depth-1 paths read 1 step, depth-2 paths 2


def test_beam_stops_at_max_steps_and_charges_every_node():
    st = LabelStepper(depth=10)
    res = beam_search(
        MSGS,
        SearchConfig(n=4, m=2, max_steps=3),
        st,
        TableScorer(
            {}.fromkeys(
                [f"a{i}" for i in range(4)]
                + [f"a{i}{j}" for i in range(4) for j in range(2)]
                + [f"a{i}{j}{k}" for i in range(4) for j in range(2) for k in range(2)],
                0.5,
            )
        ),
    )
    assert max(n.depth for n in res.nodes) == 3
    assert all(n.finish == "length" for n in res.nodes if n.depth == 3)
    assert res.policy_tokens == 2 * (len(res.nodes) - 1)


def test_weighted_best_of_n_sums_rewards_per_answer():
    # four samples: answers x (.3), y (.5), x (.3), z (.1) -> x wins with .6 though y scores best
    class Answers(LabelStepper):
        def completion(self, state, finish, *, completion_tokens, cost_s):
            ans = {"a0": "x", "a1": "y", "a2": "x", "a3": "z"}[state[:2]]
            return Completion(state, "", ans, 0, 0, 0, 1, finish, 0, 0, 0)

    table = {"a0": 0, "a1": 0, "a2": 0, "a3": 0, "a00": 0.3, "a10": 0.5, "a20": 0.3, "a30": 0.1}
    res = weighted_best_of_n(MSGS, SearchConfig(n=4), Answers(), TableScorer(table), extract=lambda a: a)
    assert res.final.text in ("a00", "a20")
    assert res.final.text == "a00"  # the earliest of the winning answer's best-scored samples


def test_aggregations_are_what_they_say():
    r = [0.5, 0.8, 0.4]
    assert aggregate(r, "last") == 0.4
    assert aggregate(r, "min") == 0.4
    assert aggregate(r, "prod") == pytest.approx(0.16)
    assert aggregate(r, "mean") == pytest.approx(17 / 30)
    assert aggregate([], "last") is None
    with pytest.raises(UserError, match="aggregation"):
        aggregate(r, "max")


def test_particle_resampling_frequencies_match_the_softmax_weights():
    rewards, temp, draws = [0.1, 0.5, 1.0, 2.0], 0.7, 3000
    w = np.exp(np.array(rewards) / temp)
    w /= w.sum()  # independent of softmax_weights' max-shift
    assert np.allclose(softmax_weights(rewards, temp), w)
    counts = np.zeros(4)
    for s in range(draws):
        for i in resample(rewards, temp, np.random.default_rng(s)):
            counts[i] += 1
    total = counts.sum()
    assert chisquare(counts, w * total).pvalue > 1e-3
    assert chisquare(counts, np.full(4, total / 4)).pvalue < 1e-9  # and they are not uniform


def test_particle_filter_resamples_and_finishes():
    st = LabelStepper()
    res = particle_filter(
        MSGS, SearchConfig(n=4, pf_temperature=0.1), st, TableScorer(_all_labels(0.5) | TABLE)
    )
    assert all(n.done for n in res.nodes if n.survived and n.depth == 2)
    assert res.final.done and res.final.depth == 2
    # every expansion after the first extends a particle that survived a resampling
    by_id = {n.id: n for n in res.nodes}
    assert all(by_id[n.parent].survived for n in res.nodes if n.depth == 2)


def _all_labels(v):
    return {"a" + "".join(map(str, t)): v for t in np.ndindex(8, 8)} | {f"a{i}": v for i in range(8)}


def test_search_strategy_grammar():
    s = parse_strategy("beam@8/4:self:agg=min")
    assert s.recipe.key == "search:beam@8/4:self:agg=min;t=0.7,p=0.95" and s.recipe.n == 1
    assert parse_strategy("pf@8:self:t=0.5").name == "pf@8:self:t=0.5"
    assert parse_strategy("dvts@8/2:prm:/models/x").scorer == "prm:/models/x"
    for bad, msg in [
        ("beam@8/3:self", "M must divide N"),
        ("beam@8:self", "beam@N/M"),
        ("pf@8:oracle", "expected self or prm:MODEL"),
        ("wbon@8:self:t=1", "pf@N only"),
        ("pf@0:self", ">= 1"),
        ("dvts@8/4:self:agg=max", "agg="),
    ]:
        with pytest.raises(UserError, match=msg):
            parse_strategy(bad)


# --------------------------------------------------------------------------- hf stepper, KV reuse
class CharTok:
    """Byte-level tokenizer with a one-line chat template: fast, and enough for the stepper."""

    eos_token_id = None
    pad_token_id = 0
    chat_template = "x"

    def __len__(self):
        return 256

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False, **kw):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def encode(self, text, add_special_tokens=False):
        return list(text.encode("latin-1", "replace"))

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": self.encode(text)}

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("latin-1")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, vocab_size=256, tie_word_embeddings=True,
    )  # fmt: skip
    return transformers.Qwen2ForCausalLM(cfg).eval()


def _stepper(model, step_tokens=5):
    st = HFStepper(
        model, CharTok(), eos_ids=set(), separator="\x00\x01\x02", fmt=NONE, max_step_tokens=step_tokens
    )
    fed = []
    handle = model.register_forward_pre_hook(
        lambda m, a, kw: fed.append(kw["input_ids"].numel()), with_kwargs=True
    )
    return st, fed, handle


def test_extending_a_node_feeds_only_its_new_tokens(tiny):
    st, fed, handle = _stepper(tiny)
    try:
        root = st.root(MSGS)
        kw = {"seed": 1, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 1000}
        kids = st.expand(root, 2, **kw)
        # the prompt once (batch 1), then 4 more tokens for each of 2 rows: 5-token steps
        assert sum(fed) == root.prompt_len + 2 * 4
        node = kids[1].state
        per_depth = []
        for depth in range(3):
            fed.clear()
            out = st.expand(node, 3, **kw)
            per_depth.append(sum(fed))
            assert [o.tokens for o in out] == [5, 5, 5]
            node = out[depth % 3].state
        # the pending token, then 4 tokens x 3 rows, at every depth: nothing is re-prefilled
        assert per_depth == [1 + 3 * 4] * 3
    finally:
        handle.remove()


def test_a_cached_continuation_equals_a_cache_free_decode(tiny):
    st, _, handle = _stepper(tiny, step_tokens=4)
    handle.remove()
    kw = {"seed": 3, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 1000}
    node = st.expand(st.root(MSGS), 3, **kw)[2].state  # a row cut out of a batch of 3
    node = st.expand(node, 2, **kw)[1].state
    greedy = st.expand(node, 1, seed=0, temperature=0.0, top_p=1.0, max_new_tokens=1000)[0].state
    ids = list(node.ids)
    with torch.inference_mode():
        for _ in range(4):  # argmax of a full forward over the whole sequence, no cache
            ids.append(int(tiny(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    assert greedy.ids == ids


def test_sampled_expansions_are_reproducible(tiny):
    st, _, handle = _stepper(tiny)
    handle.remove()
    kw = {"seed": 9, "temperature": 0.8, "top_p": 0.9, "max_new_tokens": 1000}
    a = [o.text for o in st.expand(st.root(MSGS), 4, **kw)]
    b = [o.text for o in st.expand(st.root(MSGS), 4, **kw)]
    assert a == b and len(set(a)) > 1


# --------------------------------------------------------------------------- runner
class ScriptedSearchEngine:
    """An engine offering a stepper: every path is "Step k.\\n\\n" x2 then "The answer is G."
    (G the gold, so every search is right); the policy judges each step P(yes)=0.5+depth/10."""

    name = "scripted-search"

    def __init__(self, gold: dict[str, str], fail_at: int | None = None):
        self.gold, self.fail_at, self.roots = gold, fail_at, 0

    def stepper(self, separator):
        return _RunnerStepper(self)

    def generate(self, requests, on_complete=None):
        raise AssertionError("search strategies must not draw samples")

    def close(self):
        pass


class _RunnerStepper:
    separator = "\n\n"

    def __init__(self, eng):
        self.eng = eng

    def root(self, messages):
        self.eng.roots += 1
        if self.eng.fail_at is not None and self.eng.roots == self.eng.fail_at:
            raise KeyboardInterrupt  # a killed run
        return (self.eng.gold[messages[-1]["content"]], ())

    def expand(self, state, k, *, seed, temperature, top_p, max_new_tokens):
        gold, steps = state
        d = len(steps)
        text = f"The answer is {gold}." if d == 2 else f"Step {d}.\n\n"
        return [StepOut((gold, (*steps, text)), text, 3, 0.01, "stop" if d == 2 else None) for _ in range(k)]

    def yes_probability(self, messages):
        return 0.5 + messages[-1]["content"].count("Step") / 10, 7

    def completion(self, state, finish, *, completion_tokens, cost_s):
        text = "".join(state[1])
        return Completion(
            text, "", text, 5, completion_tokens, completion_tokens - 5, 5, finish, cost_s, 0, cost_s
        )


def _spec(tmp_path, limit=4):
    return build_spec(
        {},
        {
            "variants": "base",
            "strategy": "beam@4/2:self,pf@2:self",
            "limit": limit,
            "max_steps": 5,
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "out",
            "n_boot": 100,
        },
    )


def test_runner_stores_trees_charges_prm_and_resumes_only_missing_problems(tmp_path):
    gold = {p.messages[-1]["content"]: p.gold for p in get_task("arithmetic").problems(4, 0)}
    eng = ScriptedSearchEngine(gold, fail_at=6)  # beam: problems 1-4, pf: 1 done, killed on 2
    with pytest.raises(KeyboardInterrupt):
        run(_spec(tmp_path), Console(quiet=True), engine=eng)
    st = Store(tmp_path / "s.sqlite")
    rid = st.latest_run_id()
    assert st.count(rid) == 5
    st.close()
    eng2 = ScriptedSearchEngine(gold)
    res = run(_spec(tmp_path), Console(quiet=True), engine=eng2)
    assert eng2.roots == 3  # only the pf problems without a stored answer
    st = Store(tmp_path / "s.sqlite")
    gens = st.generations(rid)
    tree = st.search_steps(rid)
    beam = gens[gens["recipe"].str.startswith("search:beam")]
    assert len(gens) == 8 and beam["correct"].all()
    # beam@4/2 per problem: 4 children of the root, 2 kept x 2, 2 kept x 2 = 12 nodes of 3 tokens
    b = tree[tree["recipe"] == beam["recipe"].iloc[0]]
    assert b.groupby("problem_id").size().eq(13).all()  # + the root
    assert (beam["completion_tokens"] == 12 * 3).all()
    # every path here is the same text, so the judge reads 3 distinct steps, 7 tokens each
    assert b.groupby("problem_id")["prm_tokens"].sum().eq(3 * 7).all()
    st.close()
    row = next(r for r in res.rows if r.strategy == "beam@4/2:self")
    assert row.n == 4 and row.accuracy == 1.0
    assert row.prm_tokens_per_problem == 3 * 7
    assert row.flop_tokens_per_problem == 12 * 3 + 3 * 7  # the judge is the policy: weight 1
    assert row.tokens_per_problem == 12 * 3
    html = (tmp_path / "out" / "report.html").read_text()
    assert "PRM tok/problem" in html
    assert "<h2>Search trees</h2>" in html and "Step 1." in html and "pruned" in html


def test_a_search_on_an_engine_without_steps_is_a_user_error(tmp_path):
    from scripted_engine import ScriptedEngine

    with pytest.raises(UserError, match="cannot run step-wise search"):
        run(_spec(tmp_path, 1), Console(quiet=True), engine=ScriptedEngine(lambda r, s: ["x"]))
