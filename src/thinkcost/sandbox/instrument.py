"""Compile hidden tests for the grader, with every value they look at routed through its scan.

Every call result, every comparison operand and every ``assert`` condition in the tests becomes
``__thinkcost_scan__(<expr>)``, which returns the value unchanged unless it carries an object
whose class overrides comparison, conversion or truth in code that is not the standard
library's (the "always-equal" hack; the rules are in ``child/testside.py``). This is done in the
parent, once per distinct test source (the same tests are graded for many samples), so the child
receives a ready code object and never parses, or even sees, the test source.
"""

from __future__ import annotations

import ast
import functools
import marshal

SCAN_NAME = "__thinkcost_scan__"
TESTS_LABEL = "<tests>"  # the tests' file name in tracebacks; no such file exists anywhere


def _is_scan(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == SCAN_NAME


def _scan(node: ast.expr) -> ast.expr:
    if _is_scan(node):
        return node
    return ast.copy_location(
        ast.Call(ast.copy_location(ast.Name(SCAN_NAME, ast.Load()), node), [node], []), node
    )


class _Instrument(ast.NodeTransformer):
    """Wrap call results, comparison operands and assert conditions (inner ones first)."""

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        return _scan(node)

    def visit_Compare(self, node: ast.Compare) -> ast.Compare:
        self.generic_visit(node)
        node.left = _scan(node.left)
        node.comparators = [_scan(c) for c in node.comparators]
        return node

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        self.generic_visit(node)
        node.test = _scan(node.test)
        return node


def imported_modules(tree: ast.AST) -> tuple[str, ...]:
    """Absolute module names the tests import, parents first ('a', 'a.b' for ``import a.b``)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found = [node.module]
        else:
            continue
        for name in found:
            parts = name.split(".")
            names += [".".join(parts[: i + 1]) for i in range(len(parts))]
    return tuple(dict.fromkeys(n for n in names if n not in ("sys", "builtins")))


@functools.lru_cache(maxsize=512)
def compile_tests(tests: str, entry_point: str | None) -> bytes:
    """``marshal.dumps((code, imported module names))``: the instrumented tests, then ``check(entry_point)``.

    Raises SyntaxError (or ValueError) when the tests themselves do not compile.
    """
    source = tests + (f"\n\ncheck({entry_point})\n" if entry_point else "\n")
    tree = ast.fix_missing_locations(_Instrument().visit(ast.parse(source, TESTS_LABEL)))
    code = compile(tree, TESTS_LABEL, "exec", dont_inherit=True)
    return marshal.dumps((code, imported_modules(tree)))
