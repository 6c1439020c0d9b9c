"""Instruction-combination sampling: the intra- and inter-sample MAPL sets."""
