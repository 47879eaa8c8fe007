"""Answer checkers: read a model's final answer out of free text and compare it with the gold."""
