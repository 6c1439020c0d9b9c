"""The shape every instruction family has: validate kwargs, check, describe, propose.

A family is one IFEval instruction type. `check` reproduces the IFEval reference verdict; `propose` picks
arguments so that given responses satisfy or break the instruction (the MAPL paper's generator `g_i`).
Every proposal is re-verified with `check` before it is returned, so a family's `_propose` may be a
heuristic without ever producing a wrong label.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

RELATIONS = ("less than", "at least")
Target = tuple[str, bool]
"""A response and whether it must satisfy (True) or violate (False) the instruction."""

Kwargs = dict[str, Any]


class InvalidKwargs(ValueError):
    """Arguments that do not fit the instruction type (missing, unknown, wrong type or out of range)."""


@dataclass(frozen=True)
class ProposalContext:
    """What a family may use besides the target responses.

    prompt: the user request the instruction will be attached to (needed by `combination:repeat_prompt`).
    candidate_words: meaningful words for keyword-like arguments, e.g. topical words proposed by a
        language model, or the other response's words; the checker still decides every verdict.
    candidate_phrases: candidate end phrases / titles, same role.
    max_phrase_words: the longest phrase a family may copy from a response itself (an end phrase taken
        from the response's ending); a short limit keeps rendered prompts from repeating the response.
    model_words, model_phrases: candidates a language model proposed for these responses
        (`mapl_core.generation.proposals`); families try them before any other candidate.
    """

    prompt: str | None = None
    candidate_words: tuple[str, ...] = ()
    candidate_phrases: tuple[str, ...] = ()
    max_phrase_words: int = 12
    model_words: tuple[str, ...] = ()
    model_phrases: tuple[str, ...] = ()

    def source_of(self, kwargs: Mapping[str, Any]) -> str:
        """ "model" when any text argument is one the model proposed, else "rules"."""
        proposed = {w.lower() for w in self.model_words} | {p.lower() for p in self.model_phrases}
        if not proposed:
            return "rules"
        for value in kwargs.values():
            items = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and v.strip().lower() in proposed for v in items):
                return "model"
        return "rules"


@dataclass(frozen=True)
class Arg:
    """One argument of an instruction type, with IFEval's name.

    kind: "int", "relation", "str", "words" (list of strings), "choice" (one of `choices`).
    lo, hi: the range `propose` draws from (IFEval's ranges); `check` accepts any int >= 1.
    """

    name: str
    kind: str
    lo: int = 1
    hi: int = 1
    choices: tuple[str, ...] = ()
    strip: bool = False
    lower: bool = False


@dataclass
class InstructionFamily:
    """Base class: subclasses set `id`, `args`, `phrasings` and implement `follows` and `_propose`."""

    id: ClassVar[str]
    args: ClassVar[tuple[Arg, ...]] = ()
    phrasings: ClassVar[tuple[str, ...]]
    relation_words: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "at least": ("at least", "no fewer than", "a minimum of"),
        "less than": ("less than", "fewer than", "under"),
    }
    _arg_names: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._arg_names = frozenset(a.name for a in self.args)

    # ---- arguments -------------------------------------------------------------------------------
    def normalize(self, kwargs: Mapping[str, Any] | None) -> Kwargs:
        """Validate `kwargs` and return them as `follows` reads them (the reference's normal form).

        `None` values are dropped, as the reference does; anything the reference would silently replace
        with a random value (0, "", [], a missing argument) is an error here instead.
        """
        given = {k: v for k, v in (kwargs or {}).items() if v is not None}
        unknown = sorted(set(given) - self._arg_names)
        if unknown:
            expected = ", ".join(sorted(self._arg_names)) or "no arguments"
            raise InvalidKwargs(f"{self.id}: unknown argument(s) {unknown}; expected {expected}")
        out: Kwargs = {}
        for arg in self.args:
            if arg.name not in given:
                raise InvalidKwargs(f"{self.id}: missing argument {arg.name!r}")
            out[arg.name] = _coerce(self.id, arg, given[arg.name])
        self._validate(out)
        return out

    def _validate(self, kw: Kwargs) -> None:
        """Cross-argument checks (override where needed)."""

    # ---- verdicts --------------------------------------------------------------------------------
    def follows(self, text: str, kw: Kwargs) -> bool:
        """The reference's `check_following` on normalized kwargs."""
        raise NotImplementedError

    def verdict(self, response: str, kw: Kwargs) -> bool:
        """Strict verdict on normalized kwargs: a blank response follows nothing (as in IFEval)."""
        return bool(response.strip()) and self.follows(response, kw)

    def check(self, response: str, kwargs: Mapping[str, Any] | None = None) -> bool:
        """Does `response` follow this instruction with these arguments? (IFEval strict verdict.)"""
        return self.verdict(response, self.normalize(kwargs))

    def check_loose(self, response: str, kwargs: Mapping[str, Any] | None = None) -> bool:
        """IFEval's loose verdict: strict on any of the response's relaxed variants."""
        from mapl_core.instructions.loose import loose_variants

        kw = self.normalize(kwargs)
        return any(self.follows(v, kw) for v in loose_variants(response))

    # ---- text ------------------------------------------------------------------------------------
    def describe(self, kwargs: Mapping[str, Any] | None, rng: random.Random) -> str:
        """The instruction as text, in one of several phrasings."""
        kw = self.normalize(kwargs)
        template = rng.choice(self.phrasings)
        fields = {k: _render(v) for k, v in kw.items()}
        for arg in self.args:
            if arg.kind == "relation":
                fields[arg.name] = rng.choice(self.relation_words[kw[arg.name]])
        fields.update(self._extra_fields(kw))
        return template.format(**fields)

    def _extra_fields(self, kw: Kwargs) -> dict[str, str]:
        return {}

    # ---- proposals -------------------------------------------------------------------------------
    def propose(
        self,
        targets: Sequence[Target],
        rng: random.Random,
        context: ProposalContext | None = None,
    ) -> Kwargs | None:
        """Arguments under which each target response gets exactly its requested verdict, or None."""
        targets = list(targets)
        if not targets or any(want and not resp.strip() for resp, want in targets):
            return None
        kw = self._propose(targets, rng, context or ProposalContext())
        if kw is None:
            return None
        norm = self.normalize(kw)
        if all(self.verdict(resp, norm) == want for resp, want in targets):
            return norm
        return None

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        raise NotImplementedError


def _coerce(family: str, arg: Arg, value: Any) -> Any:
    where = f"{family}: argument {arg.name!r}"
    if arg.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidKwargs(f"{where} must be an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise InvalidKwargs(f"{where} must be an integer, got {value!r}")
            value = int(value)
        if value < 1:
            raise InvalidKwargs(f"{where} must be >= 1, got {value}")
        return value
    if arg.kind == "relation":
        if value not in RELATIONS:
            raise InvalidKwargs(f"{where} must be one of {RELATIONS}, got {value!r}")
        return value
    if arg.kind == "words":
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise InvalidKwargs(f"{where} must be a list of strings, got {value!r}")
        items = list(value)
        if not items or not all(isinstance(w, str) and w.strip() for w in items):
            raise InvalidKwargs(f"{where} must be a non-empty list of non-empty strings, got {value!r}")
        return items
    if not isinstance(value, str) or not value.strip():
        raise InvalidKwargs(f"{where} must be a non-empty string, got {value!r}")
    if arg.kind == "choice" and value not in arg.choices:
        raise InvalidKwargs(f"{where} must be one of {sorted(arg.choices)}, got {value!r}")
    if arg.strip:
        value = value.strip()
    if arg.lower:
        value = value.lower()
    return value


def _render(value: Any) -> str:
    if isinstance(value, list):
        quoted = [f'"{w}"' for w in value]
        return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return str(value)


# ---- threshold picking shared by the counting families ---------------------------------------------
def nice_step(anchor: int) -> int:
    """Round-number step for a threshold near `anchor` (100-word limits, not 117-word ones)."""
    if anchor <= 10:
        return 1
    if anchor <= 50:
        return 5
    if anchor <= 200:
        return 10
    return 50


def pick_near(lo: int, hi: int, toward_lo: bool, rng: random.Random) -> int:
    """A round number in [lo, hi], close to `lo` (toward_lo) or to `hi`: near the response's value."""
    anchor = lo if toward_lo else hi
    step = nice_step(anchor)
    window = max(2 * step, math.ceil(0.25 * anchor))
    a, b = (lo, min(hi, lo + window)) if toward_lo else (max(lo, hi - window), hi)
    cands = list(range(math.ceil(a / step) * step, b + 1, step)) or list(range(a, b + 1))
    cands.sort(key=lambda n: abs(n - anchor))
    return rng.choice(cands[:3])


def threshold_options(
    counts: Sequence[tuple[int, bool]], lo: int, hi: int, relations: Sequence[str] = RELATIONS
) -> list[tuple[str, int, int, bool]]:
    """Feasible (relation, N_lo, N_hi, toward_lo) so that `count REL N` equals each target's verdict.

    "at least N" holds iff count >= N; "less than N" iff count < N.
    """
    sat = [c for c, want in counts if want]
    vio = [c for c, want in counts if not want]
    options = []
    for rel in relations:
        if rel == "at least":  # max(vio) < N <= min(sat)
            n_lo = max([*vio, lo - 1]) + 1 if vio else lo
            n_hi = min([*sat, hi]) if sat else hi
            toward_lo = not sat
        else:  # max(sat) < N <= min(vio)
            n_lo = max([*sat, lo - 1]) + 1 if sat else lo
            n_hi = min([*vio, hi]) if vio else hi
            toward_lo = bool(sat)
        n_lo, n_hi = max(n_lo, lo), min(n_hi, hi)
        if n_lo <= n_hi:
            options.append((rel, n_lo, n_hi, toward_lo))
    return options
