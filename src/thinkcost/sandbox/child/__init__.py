"""Files that run inside the sandboxed child (under ``python -I -S -B``), never inside thinkcost.

``bootstrap.py`` starts every child (run by path); ``grader.py`` with ``testside.py`` and
``exits.py`` is the grading harness, compiled once per parent process into a private cache (see
:func:`thinkcost.sandbox.harness.grader_code`). They import only the standard library.
"""
