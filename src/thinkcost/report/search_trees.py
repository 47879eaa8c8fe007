"""The search trees of step-level strategies (beam, dvts, pf, wbon), one collapsible tree per
(recipe, variant, problem), drawn server-side from the store's `search_steps` rows.

Why server-side nested lists and not the browser's compressed payload: a tree is small (tens
of nodes) and reads best as an outline — each step with its reward, its policy and PRM tokens
and whether the search kept it — and every string is escaped here, never set as HTML later.
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

import pandas as pd

STEP_CHARS = 240  # a step's text is cut here in the outline (the full text is in the store)
MAX_TREES = 60


def _node_line(r: dict[str, Any]) -> str:
    text = " ".join(str(r["text"]).split())
    cut = text[:STEP_CHARS] + ("…" if len(text) > STEP_CHARS else "")
    reward = "–" if r["reward"] is None or pd.isna(r["reward"]) else f"{r['reward']:.3f}"
    mark = "kept" if r["survived"] else "pruned"
    end = f", {r['finish']}" if isinstance(r["finish"], str) and r["finish"] else ""
    return (
        f'<span class="{mark}">{html.escape(cut) or "(empty step)"}</span> '
        f'<span class="muted">reward {reward} · {int(r["policy_tokens"])} tok · PRM {int(r["prm_tokens"])} tok · '
        f"{mark}{html.escape(end)}</span>"
    )


def _tree(rows: list[dict[str, Any]]) -> str:
    kids: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        parent = None if r["parent"] is None or pd.isna(r["parent"]) else int(r["parent"])
        kids[parent].append(r)

    def walk(node: int) -> str:
        items = sorted(kids.get(node, []), key=lambda r: int(r["node"]))
        if not items:
            return ""
        return "<ul>" + "".join(f"<li>{_node_line(r)}{walk(int(r['node']))}</li>" for r in items) + "</ul>"

    return walk(0)


def search_trees_section(steps: pd.DataFrame | None, recipe_names: dict[str, str] | None = None) -> str:
    """The section, or "" when the run has no searches."""
    if steps is None or steps.empty:
        return ""
    names = recipe_names or {}
    parts = []
    groups = list(steps.groupby(["recipe", "variant", "problem_id"], sort=False))
    for (recipe, variant, pid), g in groups[:MAX_TREES]:
        recs = g.to_dict("records")
        n_nodes = len(recs) - 1
        label = names.get(recipe, recipe)
        tokens = int(g["policy_tokens"].sum())
        prm = int(g["prm_tokens"].sum())
        parts.append(
            f"<details><summary>{html.escape(str(pid))} · {html.escape(label)} · {html.escape(str(variant))}: "
            f"{n_nodes} steps, {tokens} policy tok, {prm} PRM tok</summary>{_tree(recs)}</details>"
        )
    more = (
        f'<p class="note">first {MAX_TREES} of {len(groups)} trees shown</p>'
        if len(groups) > MAX_TREES
        else ""
    )
    return (
        '<section id="search-trees"><h2>Search trees</h2><p class="note">Every step a search generated, '
        "under its parent; kept = survived the search's selection (or is the answer). Rewards are the "
        f"path's aggregated step rewards.</p>{''.join(parts)}{more}</section>"
    )
