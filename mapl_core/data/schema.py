"""Arrow schemas of every table mapl writes (docs/datasets.md describes each column)."""

from __future__ import annotations

import pyarrow as pa

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
STRINGS = pa.list_(pa.string())
BOOLS = pa.list_(pa.bool_())

ORIGINAL = pa.schema(
    [
        ("pair_id", pa.string()),
        ("split", pa.string()),
        ("prompt", MESSAGES),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("source", pa.string()),
        ("source_row", pa.int64()),
    ]
)

QUARANTINE = pa.schema(
    [
        ("source", pa.string()),
        ("source_row", pa.int64()),
        ("reason", pa.string()),
        ("field", pa.string()),
        ("raw", pa.string()),
    ]
)


def _side(prefix: str) -> list[tuple[str, pa.DataType]]:
    return [
        (f"prompt_{prefix}", MESSAGES),
        (f"instructions_{prefix}", STRINGS),
        (f"kwargs_{prefix}", STRINGS),  # one canonical JSON object per instruction
        (f"texts_{prefix}", STRINGS),  # the rendered instruction sentences
        (f"follows_{prefix}", BOOLS),  # does the response follow each instruction (re-verifiable)
        (f"sources_{prefix}", STRINGS),  # "model" (arguments a language model proposed) or "rules"
    ]


INTRA = pa.schema(
    [
        ("row_id", pa.string()),
        ("pair_id", pa.string()),
        ("split", pa.string()),
        ("response_side", pa.string()),  # "chosen" or "rejected": which original response y is
        ("response", pa.string()),
        ("condition", pa.int8()),  # 1: y follows all of x_w, not all of x_l; 2: some of x_w, none of x_l
        ("k", pa.int8()),
        *_side("w"),
        *_side("l"),
    ]
)

INTER = pa.schema(
    [
        ("row_id", pa.string()),
        ("pair_id", pa.string()),
        ("split", pa.string()),
        ("combination", pa.int16()),
        ("k", pa.int8()),
        ("prompt", MESSAGES),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("instructions", STRINGS),
        ("kwargs", STRINGS),
        ("texts", STRINGS),
        ("follows_chosen", BOOLS),
        ("follows_rejected", BOOLS),
        ("sources", STRINGS),  # per instruction: "model" (arguments a language model proposed) or "rules"
        ("degree", pa.float64()),  # (followed by chosen - followed by rejected) / k, in [-1, 1]
        ("consistent", pa.bool_()),  # chosen follows at least as many instructions as rejected
    ]
)

INTER_COMPARISONS = pa.schema(
    [
        ("pair_id", pa.string()),
        ("split", pa.string()),
        ("stronger_row_id", pa.string()),
        ("weaker_row_id", pa.string()),
        ("stronger_degree", pa.float64()),
        ("weaker_degree", pa.float64()),
    ]
)
