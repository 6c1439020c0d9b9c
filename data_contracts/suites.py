"""One great-expectations suite per table: schema-level expectations plus the `check_*` columns."""

from __future__ import annotations

from mapl_core.config import BuildConfig


def suite_for(kind: str, cfg: BuildConfig, check_columns: list[str]):
    import great_expectations as gx

    E = gx.expectations
    c = cfg.construction
    exp = [E.ExpectColumnValuesToBeInSet(column=col, value_set=[True]) for col in check_columns]
    if kind == "original":
        exp += [
            E.ExpectColumnValuesToNotBeNull(column=col) for col in ("pair_id", "prompt", "chosen", "rejected")
        ] + [
            E.ExpectColumnValueLengthsToBeBetween(
                column="chosen", min_value=1, max_value=cfg.ingest.max_chars
            ),
            E.ExpectColumnValueLengthsToBeBetween(
                column="rejected", min_value=1, max_value=cfg.ingest.max_chars
            ),
            E.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "validation", "test"]),
        ]
    elif kind == "intra":
        exp += [E.ExpectColumnValuesToNotBeNull(column=col) for col in ("row_id", "pair_id", "response")] + [
            E.ExpectColumnValuesToBeInSet(column="response_side", value_set=["chosen", "rejected"]),
            E.ExpectColumnValuesToBeInSet(column="condition", value_set=[1, 2]),
            E.ExpectColumnValuesToBeBetween(column="k", min_value=1, max_value=c.k_max),
        ]
    elif kind == "inter":
        exp += [
            E.ExpectColumnValuesToNotBeNull(column=col) for col in ("row_id", "pair_id", "chosen", "rejected")
        ] + [
            E.ExpectColumnValuesToBeBetween(column="k", min_value=1, max_value=c.k_max),
            E.ExpectColumnValuesToBeBetween(column="degree", min_value=-1.0, max_value=1.0),
        ]
    elif kind == "inter_comparisons":
        exp += [E.ExpectColumnValuesToNotBeNull(column=col) for col in ("stronger_row_id", "weaker_row_id")]
    elif kind == "quarantine":
        exp += [E.ExpectColumnValuesToNotBeNull(column="reason")]
    return gx.ExpectationSuite(name=f"{cfg.name}_{kind}", expectations=exp)
