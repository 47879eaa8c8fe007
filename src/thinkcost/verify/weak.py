"""A weak verifier for code tasks: the first test assert only (with the test imports).

Why: "resample until the verifier accepts" is only as good as the verifier (Stroebl et al. 2024,
"Inference Scaling fLaws"). MBPP shows its first test in the prompt, so a program fitted to that one
example passes it and may fail the hidden ones: the stored verdict (all tests) is the strong verifier,
this one the weak, and metrics.curves.accept_until_verified reads off what trusting it costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .code import verify_code


def weak_tests(meta: Mapping[str, Any]) -> str | None:
    """The weak test program of a problem: its imports and first assert; None without a test list."""
    tests = meta.get("test_list")
    if not isinstance(tests, list) or not tests:
        return None
    imports = [str(x) for x in meta.get("test_imports") or []]
    return "\n".join([*imports, str(tests[0])])


def weak_verdict(answer_text: str, meta: Mapping[str, Any], **kw: Any) -> bool | None:
    """Whether the answer passes the first test alone; None when the problem has no test list."""
    tests = weak_tests(meta)
    if tests is None:
        return None
    return verify_code(answer_text, tests=tests, **kw).correct
