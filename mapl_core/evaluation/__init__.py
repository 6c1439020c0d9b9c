"""Benchmark evaluation: IFEval-style scoring (reward-model accuracy joins in the training issue)."""
