"""Experiments as recipes: arms that train through `training.run.train`, scored on held-out sets.

`recipe` expands an experiment YAML (configs/experiments/) into build and training recipes; `held_out` holds
the quality experiment's held-out sets and what its all-inter column is made of.
"""
