"""Views that trainers read directly, built from committed table versions.

- `trl`: `prompt`, `chosen`, `rejected` (the prompt shared by both sides): original pairs plus the
  inter-sample multi-instruction pairs consistent with the human preference; `level` says which.
- `two_sided`: `prompt_w`, `response_w`, `prompt_l`, `response_l`, `level` (original | intra | inter), the
  general comparison form of the MAPL objectives (intra rows compare one response under two prompts).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

VIEWS = ("trl", "two_sided")


def trl_view(original: pa.Table, inter: pa.Table) -> pa.Table:
    consistent = inter.filter(pc.field("consistent"))
    parts = [
        original.select(["pair_id", "split", "prompt", "chosen", "rejected"]).append_column(
            "level", pa.array(["original"] * original.num_rows)
        ),
        consistent.select(["pair_id", "split", "prompt", "chosen", "rejected"]).append_column(
            "level", pa.array(["inter"] * consistent.num_rows)
        ),
    ]
    return pa.concat_tables(parts)


def two_sided_view(original: pa.Table, intra: pa.Table, inter: pa.Table) -> pa.Table:
    consistent = inter.filter(pc.field("consistent"))

    def frame(t: pa.Table, pw: str, rw: str, pl: str, rl: str, level: str) -> pa.Table:
        return pa.table(
            {
                "pair_id": t["pair_id"],
                "split": t["split"],
                "prompt_w": t[pw],
                "response_w": t[rw],
                "prompt_l": t[pl],
                "response_l": t[rl],
                "level": pa.array([level] * t.num_rows),
            }
        )

    return pa.concat_tables(
        [
            frame(original, "prompt", "chosen", "prompt", "rejected", "original"),
            frame(intra, "prompt_w", "response", "prompt_l", "response", "intra"),
            frame(consistent, "prompt", "chosen", "prompt", "rejected", "inter"),
        ]
    )
