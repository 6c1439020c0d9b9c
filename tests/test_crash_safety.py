"""Issue 32: what a `kill -9` leaves behind never costs a finished result or blocks a later run — the
generation cache's torn tail, half-saved checkpoints, and locks whose holder died."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from corpus import HH_TEST
from tiny_model import build_tiny_model

from data_contracts import CONTRACTS
from mapl_core.build import build
from mapl_core.config import BuildConfig, IngestConfig
from mapl_core.generation.cache import GenerationCache
from mapl_core.locking import LockBusy, exclusive
from mapl_core.storage.delta_tables import DatasetStore
from mapl_core.training.config import TrainConfig
from mapl_core.training.run import TRAIN_LOCK, last_checkpoint, train
from tasks.locks import FlockLockManager

ROOT = Path(__file__).resolve().parents[1]


# --- the generation cache -------------------------------------------------------------------------------


def test_a_torn_tail_is_cut_and_the_next_entry_is_not_glued_to_it(tmp_path: Path) -> None:
    """Before: the next append went onto the torn line, and that entry was lost on every later load."""
    path = tmp_path / "cache.jsonl"
    cache = GenerationCache(path)
    cache.put_many([("a", "first")])
    cache.close()
    with path.open("ab") as fh:
        fh.write(b'{"key": "torn", "text": "half')  # a writer killed mid-write
    cache = GenerationCache(path)
    assert cache.torn_bytes > 0 and cache.get("a") == "first" and cache.get("torn") is None
    cache.put_many([("b", "second")])
    cache.close()
    again = GenerationCache(path)
    assert (again.get("a"), again.get("b")) == ("first", "second")
    assert all(json.loads(line) for line in path.read_bytes().splitlines())


def test_a_torn_multibyte_character_does_not_break_later_loads(tmp_path: Path) -> None:
    """Before: half a UTF-8 character at the end made every later generate/evaluate/propose crash."""
    path = tmp_path / "cache.jsonl"
    path.write_bytes(b'{"key": "a", "text": "snow"}\n{"key": "b", "text": "\xe2\x98')
    cache = GenerationCache(path)
    assert cache.get("a") == "snow" and cache.get("b") is None
    cache.put_many([("c", "☃ with a snowman")])
    cache.close()
    assert GenerationCache(path).get("c") == "☃ with a snowman"


def test_a_torn_tail_left_by_another_writer_is_cut_before_each_write(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    cache = GenerationCache(path)
    with path.open("ab") as fh:  # another process died mid-write while this one had the file open
        fh.write(b'{"key": "x", "te')
    cache.put_many([("y", "kept")])
    cache.close()
    assert GenerationCache(path).get("y") == "kept"


_WRITER = """
import sys
from pathlib import Path
from mapl_core.generation.cache import GenerationCache
cache = GenerationCache(Path(sys.argv[1]))
for i in range(60):  # batches of 4 × 20 KB: more than one write() of a buffered file
    cache.put_many([(f"{sys.argv[2]}-{i}-{j}", sys.argv[2] * 20000) for j in range(4)])
cache.close()
"""


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag], cwd=ROOT) for tag in "PQR"]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3 * 60 * 4
    rows = [json.loads(line) for line in lines]  # every line whole
    cache = GenerationCache(path)
    assert len(cache.entries) == 720 and all(cache.get(r["key"]) == r["text"] for r in rows)


# --- checkpoints ----------------------------------------------------------------------------------------


def _checkpoint(folder: Path, step: int, state_step: int | None = None, weights: bool = True) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if weights:
        (path / "model.safetensors").write_bytes(b"weights")
    if state_step is not None:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": state_step}))
    return path


def test_only_a_checkpoint_saved_to_the_end_is_resumed(tmp_path: Path, caplog) -> None:
    """Before: the highest `checkpoint-N` was taken whatever a kill mid-save had left of it."""
    done = _checkpoint(tmp_path, 10, 10)
    no_state = _checkpoint(tmp_path, 20)  # killed before trainer_state.json
    _checkpoint(tmp_path, 30, 20)  # a state that is not its own step's
    _checkpoint(tmp_path, 40, 40, weights=False)
    (tmp_path / "checkpoint-50").mkdir()
    (tmp_path / "checkpoint-50" / "trainer_state.json").write_text('{"global_st')  # torn
    (tmp_path / "checkpoint-x").mkdir()  # not the Trainer's
    with caplog.at_level("WARNING"):
        assert last_checkpoint(tmp_path) == str(done)
    assert "was not saved to the end" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-x"]
    assert not no_state.exists() and last_checkpoint(tmp_path / "missing") is None


# --- locks ----------------------------------------------------------------------------------------------

_HOLD = """
import sys, time
from pathlib import Path
from mapl_core.locking import exclusive
with exclusive(Path(sys.argv[1]), "the test lock"):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(lock: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(lock)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_whose_holder_is_killed_is_free_at_once(tmp_path: Path) -> None:
    """Before: a lock was judged stale by PID alone, so a reused PID kept a dead lock alive, a lock from another
    host never expired, and clean-up could delete a fresh lock. An flock dies with its holder."""
    lock = tmp_path / "x.lock"
    proc = _holder(lock)
    with (
        pytest.raises(LockBusy, match=rf"in use by process {proc.pid} on "),
        exclusive(lock, "x", timeout=0.5),
    ):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the stamp still names the dead holder (as a reused PID would), yet the lock is free
    assert json.loads(lock.read_text())["pid"] == proc.pid
    t0 = time.monotonic()
    with exclusive(lock, "x", timeout=5):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert time.monotonic() - t0 < 2 and lock.exists()  # the file stays: nobody unlinks a lock


def test_prefects_lock_manager_waits_for_a_live_holder_and_not_for_a_dead_one(tmp_path: Path) -> None:
    manager = FlockLockManager(tmp_path)
    proc = _holder(tmp_path / "key.lock")
    assert manager.is_locked("key") and not manager.acquire_lock("key", "me", acquire_timeout=0.3)
    assert not manager.wait_for_lock("key", timeout=0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not manager.is_locked("key") and manager.wait_for_lock("key", timeout=1)
    assert manager.acquire_lock("key", "me", acquire_timeout=1) and manager.is_lock_holder("key", "me")
    assert manager.acquire_lock("key", "me", acquire_timeout=0)  # its holder again
    assert not manager.acquire_lock("key", "you", acquire_timeout=0.3)  # another holder, this process
    assert not FlockLockManager(tmp_path).acquire_lock("key", "other", acquire_timeout=0.3)
    with pytest.raises(ValueError, match="not held by 'you'"):
        manager.release_lock("key", "you")
    manager.release_lock("key", "me")
    assert not manager.is_locked("key") and FlockLockManager(tmp_path).acquire_lock("key", "other", 1)


def test_two_trainings_of_one_model_folder_run_one_after_the_other(tmp_path: Path) -> None:
    """Before: nothing stopped two trainings of the same name writing and pruning the same checkpoints."""
    root = tmp_path / "root"
    build(BuildConfig(name="t", source=str(HH_TEST), ingest=IngestConfig(limit=30), batch_size=30),
          DatasetStore(root), contracts=CONTRACTS)  # fmt: skip
    tiny = build_tiny_model(tmp_path / "tiny")
    cfg = TrainConfig(
        data="t", model=str(tiny), max_steps=2, batch_size=4, limit_per_level=8, eval_limit_per_level=4
    )
    out = tmp_path / "out"
    proc = _holder(out / TRAIN_LOCK)  # another training of this folder, as far as the lock tells
    done: list = []
    worker = threading.Thread(target=lambda: done.append(train(cfg, DatasetStore(root), output=out)))
    worker.start()
    time.sleep(3)
    assert worker.is_alive() and not done and not (out / "model").exists()  # waiting, not training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    worker.join(timeout=600)
    assert done and done[0].steps == 2 and (out / "model").is_dir()


# --- the generation child -------------------------------------------------------------------------------


def test_a_generation_child_that_makes_no_progress_is_killed(tiny: Path, tmp_path: Path) -> None:
    """Before: the isolated child had no timeout, so a hung engine held the pipeline forever. Here the real
    child cannot finish a batch within the (tiny) stall limit: it is killed with its process group, and the
    error says how to resume."""
    from mapl_core.generation.isolated import GenerationStalled, generate_isolated

    cache = tmp_path / "cache.jsonl"
    with pytest.raises(
        GenerationStalled, match=r"finished no batch for 1 s and was killed; .* rerun resumes"
    ):
        generate_isolated(str(tiny), "transformers", [{"prompt": "Hi"}], tmp_path / "out.jsonl", cache,
                          {"max_new_tokens": 4}, batch_size=1, stall_s=1)  # fmt: skip
    assert not (tmp_path / "out.jsonl").exists()
    report = generate_isolated(str(tiny), "transformers", [{"prompt": "Hi"}], tmp_path / "out.jsonl", cache,
                               {"max_new_tokens": 4}, batch_size=1)  # fmt: skip
    assert report["generated"] == 1 and (tmp_path / "out.jsonl").is_file()


# --- construction ---------------------------------------------------------------------------------------


def test_construction_builds_again_when_a_worker_is_killed_mid_batch(tmp_path: Path, caplog) -> None:
    """Before: the construct sub-flow had no retries, though the docs said so; a worker killed mid-batch failed
    the stage. Now the stage builds again (what the stage tasks retry), and the tables are the ones an
    undisturbed build gives."""
    import psutil

    from mapl_core.build import table_name
    from mapl_core.pipeline.stages import construct_stage
    from tasks.policies import is_transient

    store = DatasetStore(tmp_path / "root")
    cfg = BuildConfig(name="k", source=str(HH_TEST), ingest=IngestConfig(limit=600), batch_size=25)
    original = build(cfg, store, stage="ingest").versions["original"].version
    killed: list[int] = []

    def kill_one_worker() -> None:
        me = psutil.Process()
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for child in me.children(recursive=True):
                if "spawn_main" in " ".join(child.cmdline()):  # a pool worker, not the resource tracker
                    time.sleep(1.0)  # let it take a batch
                    child.kill()
                    killed.append(child.pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    with caplog.at_level("WARNING"):
        record = construct_stage(cfg, store, CONTRACTS, ("k_original", original), workers=2,
                                 retry_if=is_transient, attempts=3)  # fmt: skip
    killer.join()
    assert killed and "BrokenProcessPool" in caplog.text and "attempt 2 of 3" in caplog.text
    assert not record["reused"] and [v.version for v in store.versions(table_name(cfg, "intra"))] == [0]
    calm = DatasetStore(tmp_path / "calm")
    build(cfg, calm, stage="ingest")
    construct_stage(cfg, calm, CONTRACTS, ("k_original", 0), workers=1)
    for kind in ("intra", "inter", "inter_comparisons"):
        name = table_name(cfg, kind)
        assert (
            store.versions(name)[-1].metadata["fingerprint"]
            == calm.versions(name)[-1].metadata["fingerprint"]
        )
