"""Bad input ends in a clear error naming the file, not a traceback or a partial version (issue 32; the first kinds
of its corpus: an empty source file, and limits on generation lengths)."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from mapl_core.build import IngestFailed, build
from mapl_core.config import BuildConfig
from mapl_core.data.readers import SourceError
from mapl_core.generation.protocol import MAX_NEW_TOKENS, SamplingConfig
from mapl_core.pipeline.config import EvaluationConfig
from mapl_core.storage.delta_tables import DatasetStore


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv"])
def test_an_empty_source_says_so_and_commits_nothing(name: str, tmp_path: Path) -> None:
    source = tmp_path / name
    source.write_text("")
    store = DatasetStore(tmp_path / "root")
    with pytest.raises(IngestFailed, match=rf"{name}: no rows read \(an empty file or split\?\)") as raised:
        build(BuildConfig(name="e", source=str(source)), store)
    assert store.names() == []  # not even an empty quarantine version
    assert "0 of 0" not in str(raised.value)  # what it said before


def test_generation_lengths_have_an_upper_bound() -> None:
    with pytest.raises(ValueError, match=f"outside 1..{MAX_NEW_TOKENS}"):
        SamplingConfig(max_new_tokens=10**6)
    with pytest.raises(ValueError, match="outside"):
        SamplingConfig(max_new_tokens=0)
    with pytest.raises(ValidationError, match="less than or equal"):
        EvaluationConfig(max_new_tokens=10**6)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mapl_cli.main",
            "generate",
            "--prompts",
            "p.jsonl",
            "--out",
            "o.jsonl",
            "--max-new-tokens",
            "1000000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "max-new-tokens" in done.stderr and "Traceback" not in done.stderr


# --- the source corpus: each broken file ends in a quarantined row naming row and field, or in one clear
# error naming the file, with nothing committed (no partial table version) ---------------------------------

GOOD = [
    {"prompt": f"Question {i}?", "chosen": f"A helpful answer {i}.", "rejected": f"No {i}."}
    for i in range(24)
]
BAD_AT = 3  # the broken row's 1-based row number


def _jsonl(rows: list[bytes], newline: bytes = b"\n") -> bytes:
    return b"".join(r + newline for r in rows)


def _good_lines() -> list[bytes]:
    return [json.dumps(r).encode() for r in GOOD]


def _with_bad(line: bytes) -> bytes:
    lines = _good_lines()
    return _jsonl([*lines[: BAD_AT - 1], line, *lines[BAD_AT - 1 :]])


def _csv(rows: list[dict], prefix: bytes = b"") -> bytes:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["prompt", "chosen", "rejected"])
    writer.writeheader()
    writer.writerows(rows)
    return prefix + buf.getvalue().encode("utf-8", "surrogateescape")


def _bad_row(key: str, raw: bytes) -> bytes:
    return b'{"prompt": "Q?", "' + key.encode() + b'": "' + raw + b'", "rejected": "No."}'


GZ_WHOLE = gzip.compress(_jsonl(_good_lines() * 40))
QUARANTINED = {  # file name → (content, reason fragment, field)
    "non_utf8.jsonl": (_with_bad(_bad_row("chosen", b"caf\xe9 au lait")), "not valid UTF-8", "chosen"),
    "torn_multibyte.jsonl": (_with_bad(_bad_row("chosen", b"snow \xe2\x98")), "not valid UTF-8", "chosen"),
    "nul_escape.jsonl": (_with_bad(_bad_row("chosen", b"a\\u0000b")), "NUL", "chosen"),
    "lone_surrogate_escape.jsonl": (_with_bad(_bad_row("chosen", b"x\\udc80y")), "not valid UTF-8", "chosen"),
    "not_json.jsonl": (_with_bad(b"{this is not json"), "not a JSON object", ""),
    "raw_nul_line.jsonl": (_with_bad(b"\x00\x00\x00"), "NUL", "(the whole line)"),
    "array_row.jsonl": (_with_bad(b"[1, 2, 3]"), "not a record (list)", ""),
    "missing_field.jsonl": (_with_bad(b'{"prompt": "Q?", "chosen": "Yes."}'), "missing field", "rejected"),
    "number_field.jsonl": (
        _with_bad(b'{"prompt": "Q?", "chosen": 7, "rejected": "No."}'),
        "not text (int)",
        "chosen",
    ),
    "ten_mb_line.jsonl": (
        _with_bad(_bad_row("chosen", b"x" * (10 << 20))),
        "longer than max_chars",
        "chosen",
    ),
    "field_200k.csv": (
        _csv([*GOOD[:2], {"prompt": "Q?", "chosen": "y" * (200 << 10), "rejected": "No."}, *GOOD[2:]]),
        "longer than max_chars",
        "chosen",
    ),
    "non_utf8.csv": (
        _csv([*GOOD[:2], {"prompt": "Q?", "chosen": "caf\udce9", "rejected": "No."}, *GOOD[2:]]),
        "not valid UTF-8",
        "chosen",
    ),
    "identical.jsonl": (
        _with_bad(b'{"prompt": "Q?", "chosen": "Same.", "rejected": "Same."}'),
        "identical",
        "rejected",
    ),
}
CLEAN = {  # broken in form only: every row is read
    "bom.jsonl": b"\xef\xbb\xbf" + _jsonl(_good_lines()),
    "crlf.jsonl": _jsonl(_good_lines(), b"\r\n"),
    "blank_lines.jsonl": _jsonl(_good_lines(), b"\n\n"),
    "bom.csv": _csv(GOOD, b"\xef\xbb\xbf"),
}
FAILS = {  # file name → (content, message fragment)
    "malformed.json": (
        b'[{"prompt": "Q?", "chosen": "Yes.",\n  "rejected": "No."},\n  {"prompt": ]',
        r"not a valid JSON document: line 3, column",
    ),
    "truncated.jsonl.gz": (GZ_WHOLE[: len(GZ_WHOLE) // 2], "not a complete gzip file"),
    "plain_text.jsonl.gz": (_jsonl(_good_lines()), "not a complete gzip file"),
    "not_parquet.parquet": (b"prompt,chosen,rejected\n", "not a readable Parquet file"),
}


def _build(tmp_path: Path, name: str, content: bytes) -> tuple[DatasetStore, BuildConfig]:
    source = tmp_path / name
    source.write_bytes(content)
    cfg = BuildConfig(name="c", source=str(source), ingest={"max_chars": 8000})
    store = DatasetStore(tmp_path / "root")
    return store, cfg


@pytest.mark.parametrize("name", sorted(QUARANTINED))
def test_a_broken_row_is_quarantined_with_row_field_and_reason(name: str, tmp_path: Path) -> None:
    content, reason, field = QUARANTINED[name]
    store, cfg = _build(tmp_path, name, content)
    outcome = build(cfg, store)
    q = store.to_pandas("c_quarantine")
    assert len(q) == 1, q.to_dict("records")
    row = q.iloc[0]
    assert reason in row.reason and row.field == field and row.source_row == BAD_AT, row.to_dict()
    assert row.source.endswith(name)
    assert outcome.ingest.pairs == len(GOOD) and len(store.to_pandas("c_original")) == len(GOOD)


def test_a_parquet_file_of_wrong_types_fails_with_its_rows_quarantined(tmp_path: Path) -> None:
    """A Parquet column cannot mix types: every row is bad, so the build refuses, naming the reason, and
    commits the quarantine alone, for inspection."""
    source = tmp_path / "wrong_types.parquet"
    pq.write_table(
        pa.table(
            {
                "prompt": [r["prompt"] for r in GOOD],
                "chosen": list(range(len(GOOD))),
                "rejected": [r["rejected"] for r in GOOD],
            }
        ),
        source,
    )
    store = DatasetStore(tmp_path / "root")
    with pytest.raises(IngestFailed, match=r"24 of 24 rows are bad .*24 × not text \(int\)"):
        build(BuildConfig(name="c", source=str(source)), store)
    assert store.names() == ["c_quarantine"]
    q = store.to_pandas("c_quarantine")
    assert set(q.field) == {"chosen"} and sorted(q.source_row) == list(range(1, 25))


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_a_bom_crlf_or_blank_lines_lose_no_row(name: str, tmp_path: Path) -> None:
    store, cfg = _build(tmp_path, name, CLEAN[name])
    outcome = build(cfg, store)
    assert outcome.ingest.pairs == len(GOOD) and outcome.ingest.quarantined == 0
    assert set(store.to_pandas("c_original").prompt.map(lambda p: p[-1]["content"])) == {
        r["prompt"] for r in GOOD
    }


@pytest.mark.parametrize("name", sorted(FAILS))
def test_an_unreadable_source_is_one_clear_error_and_commits_nothing(name: str, tmp_path: Path) -> None:
    content, message = FAILS[name]
    store, cfg = _build(tmp_path, name, content)
    with pytest.raises(SourceError, match=message) as raised:
        build(cfg, store)
    assert name in str(raised.value) and "\n" not in str(raised.value)
    assert store.names() == []  # no partial version of any table
    assert not any((tmp_path / "root").rglob("*.parquet"))  # nor a staged file left behind
