"""Puzzle environments with a complexity knob (Shojaee et al. 2025): hanoi, checker-jumping,
river-crossing, blocks-world. Offline and seeded; each answer is replayed by a simulator
(base.py), its move list read by moves.py. Each module registers its task in TASKS."""

from thinkcost.registry import import_submodules

import_submodules(__name__, __path__)
