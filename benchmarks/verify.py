"""Both verification benchmarks in one run: math checks per second (our wrapper vs raw
math-verify) and sandbox executions per second (serial vs a pool of 2).

    python benchmarks/verify.py
"""

from __future__ import annotations

import runpy
from pathlib import Path

if __name__ == "__main__":
    here = Path(__file__).parent
    for script in ("verify_math.py", "verify_sandbox.py"):
        print(f"== {script}")
        runpy.run_path(str(here / script), run_name="__main__")
