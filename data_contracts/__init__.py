"""Data contracts: one great-expectations suite per table, checked on every row before any commit.

from data_contracts import CONTRACTS
build(cfg, store, contracts=CONTRACTS)      # row checks run in the build's workers
validate("intra", staged, cfg, report_dir)  # or check one staged table on its own
"""

from data_contracts.runner import CONTRACTS, validate

__all__ = ["CONTRACTS", "validate"]
