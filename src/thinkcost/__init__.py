"""thinkcost: the true cost of a correct answer from a reasoning LLM."""

__version__ = "0.1.0"
