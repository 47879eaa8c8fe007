"""How tests/data/store_v01/ was made: a store written by thinkcost 0.1 (commit cfc0301) with the
scripted engine, and 0.1's own `thinkcost report --format json|md` of it. The migration test
opens it with today's code and checks the report is the same. Run from a checkout of cfc0301:
    PYTHONPATH=src:tests python make.py"""
import sys
from rich.console import Console
import thinkcost
from scripted_engine import ScriptedEngine
from thinkcost.runner import run
from thinkcost.spec import build_spec
from thinkcost.tasks import get_task

GOLD = {p.messages[-1]["content"]: p.gold for p in get_task("arithmetic").problems(6, 0)}


def script_for(worse):
    """worse: the "quantized" variant thinks 3 tokens longer and gets problem 1 wrong too."""

    def script(req, sid):
        content = req.prompt_messages[-1]["content"]
        k = sorted(GOLD).index(content)
        right = (k + sid) % 3 != 0 and not (worse and k == 1)
        answer = GOLD[content] if right else "-1"
        steps = [" step"] * (k + sid + (3 if worse else 0))
        return ["Let", " me", " add", "."] + steps + ["\nThe", " answer", " is", f" {answer}", "."]

    return script


for variants, worse in (("base", False), ("base,rtn-w4g32", True)):  # base is stored by the first run
    spec = build_spec({}, {"variants": variants, "strategy": "greedy,maj@4,short-1@4,bf-cap:6",
        "limit": 6, "max_new_tokens": 24, "store": "v01.sqlite", "out": "out", "n_boot": 200})
    res = run(spec, Console(quiet=True), engine=ScriptedEngine(script_for(worse), batch_size=8))
    print(thinkcost.__file__, res.run_id, res.generated)
