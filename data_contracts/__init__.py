"""great-expectations suites, one per table, run on every new dataset version (the construction issue)."""
