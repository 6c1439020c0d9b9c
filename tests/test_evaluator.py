"""`mapl evaluate-responses`: metrics equal to the reference's, outputs, and clear errors on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import IFEVAL_PROMPTS, hh_responses, load_ifeval
from reference_ifeval import reference_verdicts, row_reference_is_random
from typer.testing import CliRunner

from mapl_cli.main import app

# The two prompts whose `letter` is not a-z are left out: the reference's verdict on them is random.
ROWS = [r for r in load_ifeval()[:62] if not row_reference_is_random(r)]
runner = CliRunner()


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    texts = hh_responses(20)
    responses = []
    for i, r in enumerate(ROWS):
        text = texts[i % len(texts)]
        if i % 3 == 0:
            text = text.upper()
        if i % 4 == 0:
            text = f'"{text.replace(",", "")}"'
        responses.append({"prompt": r["prompt"], "response": text})
    return _write_jsonl(tmp_path / "prompts.jsonl", ROWS), _write_jsonl(
        tmp_path / "responses.jsonl", responses
    )


def test_metrics_equal_the_reference(files: tuple[Path, Path], tmp_path: Path) -> None:
    prompts, responses = files
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["evaluate-responses", "--prompts", str(prompts), "--responses", str(responses), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    verdict_rows = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert len(verdict_rows) == len(ROWS) == summary["prompts"]

    by_prompt = {
        json.loads(line)["prompt"]: json.loads(line)["response"]
        for line in responses.read_text().splitlines()
    }
    strict_all, loose_all, strict_inst, loose_inst = [], [], [], []
    for row in ROWS:
        s, lo = reference_verdicts(
            row["prompt"], row["instruction_id_list"], row["kwargs"], by_prompt[row["prompt"]]
        )
        strict_all.append(all(s))
        loose_all.append(all(lo))
        strict_inst += s
        loose_inst += lo
    assert summary["prompt_level_strict_acc"] == pytest.approx(sum(strict_all) / len(strict_all))
    assert summary["prompt_level_loose_acc"] == pytest.approx(sum(loose_all) / len(loose_all))
    assert summary["inst_level_strict_acc"] == pytest.approx(sum(strict_inst) / len(strict_inst))
    assert summary["inst_level_loose_acc"] == pytest.approx(sum(loose_inst) / len(loose_inst))
    assert 0 < summary["prompt_level_strict_acc"] < 1  # the fixture has passes and failures
    assert "prompt-level accuracy" in result.output and "per instruction type" in result.output.lower()


def test_bad_lines_are_named_by_file_line_and_field(files: tuple[Path, Path], tmp_path: Path) -> None:
    _, responses = files
    bad = tmp_path / "bad_prompts.jsonl"
    rows = [json.dumps(r) for r in ROWS[:3]]
    rows.append("{not json")
    rows.append(json.dumps({**ROWS[3], "instruction_id_list": ["keywords:nope"], "kwargs": [{}]}))
    rows.append(
        json.dumps(
            {
                **ROWS[4],
                "instruction_id_list": ["length_constraints:number_words"],
                "kwargs": [{"num_words": "many", "relation": "at least"}],
            }
        )
    )
    _write_jsonl(bad, rows)
    result = runner.invoke(app, ["evaluate-responses", "--prompts", str(bad), "--responses", str(responses)])
    assert result.exit_code == 2
    err = result.stderr if hasattr(result, "stderr") else result.output
    assert f"{bad}:4: malformed JSON" in err
    assert f"{bad}:5: instruction_id_list[0]: unknown instruction id 'keywords:nope'" in err
    assert f"{bad}:6: kwargs[0]:" in err and "must be an integer" in err
    assert "Traceback" not in err


def test_skip_invalid_scores_the_rest_and_reports_each_line(files: tuple[Path, Path], tmp_path: Path) -> None:
    prompts, responses = files
    lines = responses.read_text().splitlines()
    broken = _write_jsonl(
        tmp_path / "responses_broken.jsonl", [*lines[:-1], "[1, 2"]
    )  # last prompt loses its response
    args = ["evaluate-responses", "--prompts", str(prompts), "--responses", str(broken)]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 2
    assert "no response for prompt key=" in failed.output or "no response for prompt key=" in str(
        failed.stderr
    )
    out = tmp_path / "skipped"
    ok = runner.invoke(app, [*args, "--skip-invalid", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompts"] == len(ROWS) - 1
    assert len(summary["skipped"]) == 2
    assert any(":" + str(len(lines)) + ": malformed JSON" in s for s in summary["skipped"])


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "evaluate-responses",
            "--prompts",
            str(tmp_path / "nope.jsonl"),
            "--responses",
            str(tmp_path / "r.jsonl"),
        ],
    )
    assert result.exit_code == 2
    assert "nope.jsonl: file not found" in (result.stderr or result.output)


def test_baseline_responses_cover_every_prompt_and_are_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert runner.invoke(app, ["baseline-responses", "--out", str(a)]).exit_code == 0
    assert runner.invoke(app, ["baseline-responses", "--out", str(b)]).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_text().splitlines()) == sum(1 for _ in IFEVAL_PROMPTS.open())


def test_every_command_has_help() -> None:
    commands = ([], ["evaluate-responses"], ["baseline-responses"], ["instructions"], ["where"], ["build"], ["generate"],
                ["datasets"], ["datasets", "list"], ["datasets", "show"], ["datasets", "pull"], ["models"], ["models", "prepare"])  # fmt: skip
    for cmd in commands:
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_missing_punkt_data_gives_a_clear_message(tmp_path: Path) -> None:
    env = {**os.environ, "NLTK_DATA": str(tmp_path / "none"), "MAPL_SHARED_DATA": str(tmp_path / "none"),
           "MAPL_DATA_ROOT": str(tmp_path / "root"), "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)}  # fmt: skip
    code = (
        "import nltk, mapl_core.paths as p; p.REPO_ROOT = p.Path('/nonexistent');"
        "nltk.data.path[:] = [];"
        "from mapl_core.instructions import get_family;"
        "get_family('length_constraints:number_sentences').check('One. Two.', {'num_sentences': 1, 'relation': 'at least'})"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "NLTK's English Punkt data (punkt_tab) is needed" in proc.stderr
    assert "NLTK_DATA" in proc.stderr
