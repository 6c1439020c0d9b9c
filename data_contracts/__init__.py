"""Data contracts: one great-expectations suite per table, run on every staged version before its commit.

from data_contracts import validate
build(cfg, store, validator=validate)
"""

from data_contracts.validate import validate

__all__ = ["validate"]
