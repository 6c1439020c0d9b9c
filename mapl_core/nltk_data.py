"""Locating NLTK's Punkt sentence-splitter data without network access.

Two IFEval checks (`length_constraints:number_sentences`, `change_case:capital_word_frequency`) depend on
NLTK's trained English Punkt parameters (`punkt_tab`). Resolution order:

1. a folder already on `NLTK_DATA` / `nltk.data.path` that holds `tokenizers/punkt_tab/english`;
2. `$MAPL_SHARED_DATA/nltk_data`, then the workplace copy at `<repo>/../shared/data/nltk_data`;
3. the project's data folder `<data root>/nltk_data` (default `./.mapl/nltk_data`), downloading
   `punkt_tab` there once when the network allows;
otherwise a clear error says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from mapl_core.paths import data_root, shared_data_dir

PUNKT_RESOURCE = "tokenizers/punkt_tab/english"


class NltkDataMissing(RuntimeError):
    """Raised when the Punkt data can be neither found nor downloaded."""


def _has_punkt(folder: Path) -> bool:
    return (folder / PUNKT_RESOURCE / "sent_starters.txt").is_file()


def candidate_dirs() -> list[Path]:
    """Folders searched for Punkt data, in order."""
    import nltk

    dirs = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    dirs += [Path(p) for p in nltk.data.path]
    shared = shared_data_dir()
    if shared is not None:
        dirs.append(shared / "nltk_data")
    dirs.append(data_root() / "nltk_data")
    return dirs


_resolved: Path | None = None


def ensure_punkt(download: bool = True) -> Path:
    """Return a folder holding `punkt_tab`, registering it with NLTK; download once if allowed."""
    global _resolved
    if _resolved is not None:
        return _resolved
    import nltk

    for folder in candidate_dirs():
        if _has_punkt(folder):
            _register(nltk, folder)
            return folder
    target = data_root() / "nltk_data"
    if download and os.environ.get("HF_HUB_OFFLINE") != "1":
        target.mkdir(parents=True, exist_ok=True)
        try:
            ok = nltk.download("punkt_tab", download_dir=str(target), quiet=True, raise_on_error=True)
        except Exception:  # network errors surface as many types; the message below covers them all
            ok = False
        if ok and _has_punkt(target):
            _register(nltk, target)
            return target
    searched = "\n  ".join(str(d) for d in candidate_dirs())
    raise NltkDataMissing(
        "NLTK's English Punkt data (punkt_tab) is needed to count sentences and was not found in:\n  "
        f"{searched}\nand could not be downloaded. Point NLTK_DATA at a folder holding "
        f"{PUNKT_RESOURCE}/, or run once with network access: "
        f"python -m nltk.downloader -d {target} punkt_tab"
    )


def _register(nltk_module, folder: Path) -> None:
    global _resolved
    path = str(folder)
    if path not in nltk_module.data.path:
        nltk_module.data.path.insert(0, path)
    os.environ.setdefault("NLTK_DATA", path)
    _resolved = folder
