"""Training with the MAPL objectives on TRL: one pairwise kernel over comparison rows of every level.

`examples` turns dataset tables into comparisons, `encoding` tokenizes them under one truncation rule,
`objective` is the loss, `reward` and `dpo` are the TRL trainers, `run` the entry points `mapl train` uses.
"""
