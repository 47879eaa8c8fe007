"""Search over reasoning steps guided by step rewards: weighted best-of-N, beam search, DVTS,
particle filtering (plain functions of problem, config, stepper and scorer), the step scorers
(`self`, `prm:MODEL`) and their accounting. Strategy names register in `strategies/search.py`."""
