"""The IFEval instruction families, one module per IFEval category."""
