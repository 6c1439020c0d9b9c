"""Ingest: every accepted shape and format, quarantine with reasons, the bad-share limit, splits."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpus import HH_TEST

from mapl_core.config import ColumnMapping, IngestConfig
from mapl_core.data.ingest import IngestReport, Pair, Quarantined, ingest, pair_id, split_of
from mapl_core.data.readers import SourceError, read_rows

STD = [
    {
        "prompt": "How do I boil an egg?",
        "chosen": "Put it in boiling water for 9 minutes.",
        "rejected": "Eggs are animals.",
    },
    {"prompt": "Name a color.", "chosen": "Blue.", "rejected": "Seven."},
]


def run(
    source: str, cfg: IngestConfig | None = None, shape: str = "auto"
) -> tuple[list[Pair], list[Quarantined], IngestReport]:
    rep = IngestReport(source)
    out = list(ingest(read_rows(source), source, shape, cfg or IngestConfig(), rep))
    return [o for o in out if isinstance(o, Pair)], [o for o in out if isinstance(o, Quarantined)], rep


def write_jsonl(path: Path, rows: list) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_trl_standard_jsonl_json_csv_parquet_and_gzip_agree(tmp_path: Path) -> None:
    sources = [write_jsonl(tmp_path / "a.jsonl", STD)]
    (tmp_path / "b.json").write_text(json.dumps(STD))
    sources.append(str(tmp_path / "b.json"))
    with (tmp_path / "c.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["prompt", "chosen", "rejected"])
        w.writeheader()
        w.writerows(STD)
    sources.append(str(tmp_path / "c.csv"))
    pq.write_table(pa.Table.from_pylist(STD), tmp_path / "d.parquet")
    sources.append(str(tmp_path / "d.parquet"))
    with gzip.open(tmp_path / "e.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in STD))
    sources.append(str(tmp_path / "e.jsonl.gz"))
    ids = []
    for src in sources:
        pairs, bad, _ = run(src)
        assert not bad, src
        ids.append([p.pair_id for p in pairs])
        assert pairs[0].prompt == [{"role": "user", "content": STD[0]["prompt"]}]
        assert pairs[0].chosen == STD[0]["chosen"]
    assert all(i == ids[0] for i in ids)  # the content hash does not depend on the file format


def test_conversational_explicit_and_implicit_prompt(tmp_path: Path) -> None:
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a fact."},
    ]
    rows = [
        {
            "prompt": history,
            "chosen": [{"role": "assistant", "content": "Water boils at 100 C."}],
            "rejected": [{"role": "assistant", "content": "No."}],
        },
        {
            "chosen": [*history, {"role": "assistant", "content": "Octopuses have three hearts."}],
            "rejected": [*history, {"role": "assistant", "content": "Dunno."}],
        },
    ]
    pairs, bad, _ = run(write_jsonl(tmp_path / "conv.jsonl", rows))
    assert not bad
    assert [p.prompt for p in pairs] == [history, history]
    assert pairs[1].chosen == "Octopuses have three hearts."


def test_real_hh_transcripts_split_into_history_and_final_turn() -> None:
    pairs, bad, rep = run(str(HH_TEST))
    assert rep.rows_read == 2312 and rep.pairs == len(pairs) > 2250
    assert {q.reason for q in bad} <= {
        "empty response",
        "chosen and rejected transcripts have different histories",
        "duplicate of an earlier pair",
        "chosen is identical to rejected",
    }
    for p in pairs[:200]:
        assert (
            p.prompt[-1]["role"] == "user"
            and "\n\nHuman:" not in p.chosen
            and "\n\nAssistant:" not in p.rejected
        )
        assert [m["role"] for m in p.prompt[::2]] == ["user"] * len(p.prompt[::2])


def test_column_mapping(tmp_path: Path) -> None:
    rows = [{"question": r["prompt"], "good": r["chosen"], "bad": r["rejected"]} for r in STD]
    cfg = IngestConfig(columns=ColumnMapping(prompt="question", chosen="good", rejected="bad"))
    pairs, bad, _ = run(write_jsonl(tmp_path / "m.jsonl", rows), cfg)
    assert len(pairs) == 2 and not bad


@pytest.mark.parametrize(
    ("row", "reason", "field"),
    [
        ({"prompt": "q", "chosen": "a"}, "missing field", "rejected"),
        ({"prompt": "q", "chosen": " ", "rejected": "b"}, "empty", "chosen"),
        ({"prompt": "q", "chosen": 3, "rejected": "b"}, "not text (int)", "chosen"),
        ({"prompt": "q", "chosen": "same", "rejected": "same "}, "chosen is identical to rejected", "rejected"),
        ({"prompt": "q", "chosen": "x" * 50, "rejected": "b"}, "longer than max_chars (50 > 40)", "chosen"),
        ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"}, "chosen and rejected transcripts have different histories", "rejected"),
        ("{not json", "not a JSON object", ""),
    ],
)  # fmt: skip
def test_bad_rows_are_quarantined_with_reason_row_and_field(
    tmp_path: Path, row, reason: str, field: str
) -> None:
    src = write_jsonl(tmp_path / "bad.jsonl", [STD[0], row])
    pairs, bad, rep = run(src, IngestConfig(max_chars=40))
    assert len(pairs) == 1 and len(bad) == 1
    assert (bad[0].reason, bad[0].field, bad[0].source_row) == (reason, field, 2)
    assert rep.reasons == {reason: 1}


def test_duplicates_are_quarantined(tmp_path: Path) -> None:
    pairs, bad, _ = run(write_jsonl(tmp_path / "dup.jsonl", [STD[0], STD[1], STD[0]]))
    assert len(pairs) == 2 and [(b.reason, b.source_row) for b in bad] == [
        ("duplicate of an earlier pair", 3)
    ]


def test_splits_are_stable_and_roughly_proportional() -> None:
    pairs, _, _ = run(str(HH_TEST))
    splits = [split_of(p.pair_id, (0.9, 0.05, 0.05)) for p in pairs]
    assert 0.85 < splits.count("train") / len(splits) < 0.95
    assert splits == [split_of(p.pair_id, (0.9, 0.05, 0.05)) for p in pairs]
    assert pair_id(pairs[0].prompt, pairs[0].chosen, pairs[0].rejected) == pairs[0].pair_id


def test_hub_loading_path_works_on_a_local_copy(tmp_path: Path) -> None:
    folder = tmp_path / "hub_copy"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", STD)
    pairs, bad, _ = run(str(folder))  # goes through datasets.load_dataset, like a hub id
    assert len(pairs) == 2 and not bad


def test_unknown_sources_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a hub id"):
        list(read_rows(str(tmp_path / "missing.jsonl")))
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SourceError, match=r"unknown format \.txt"):
        list(read_rows(str(tmp_path / "x.txt")))
