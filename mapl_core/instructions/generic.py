"""Family shapes shared by several instruction types: thresholds, exact counts, fixed checks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import ClassVar

from mapl_core.instructions.base import (
    Arg,
    InstructionFamily,
    Kwargs,
    ProposalContext,
    Target,
    pick_near,
    threshold_options,
)


class FixedFamily(InstructionFamily):
    """An instruction without arguments: it holds or not; `propose` can only confirm."""

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        return {}


class ThresholdFamily(InstructionFamily):
    """`measure(text) REL N`, REL in {"less than", "at least"} (or fixed to "at least")."""

    count_arg: ClassVar[str]
    relation_arg: ClassVar[str | None] = None  # None: the relation is always "at least"

    @classmethod
    def count_spec(cls) -> Arg:
        return next(a for a in cls.args if a.name == cls.count_arg)

    def measure(self, text: str, kw: Kwargs) -> int:
        raise NotImplementedError

    def follows(self, text: str, kw: Kwargs) -> bool:
        count = self.measure(text, kw)
        relation = kw[self.relation_arg] if self.relation_arg else "at least"
        return count < kw[self.count_arg] if relation == "less than" else count >= kw[self.count_arg]

    def subjects(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Iterator[Kwargs]:
        """The non-count arguments to try, best first (a keyword, a letter, …); none by default."""
        yield {}

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        spec = self.count_spec()
        relations = ("less than", "at least") if self.relation_arg else ("at least",)
        for subject in self.subjects(targets, rng, ctx):
            counts = [(self.measure(resp, subject), want) for resp, want in targets]
            options = threshold_options(counts, spec.lo, spec.hi, relations)
            if not options:
                continue
            relation, lo, hi, toward_lo = rng.choice(options)
            kw = {**subject, self.count_arg: pick_near(lo, hi, toward_lo, rng)}
            if self.relation_arg:
                kw[self.relation_arg] = relation
            return kw
        return None


class ExactCountFamily(InstructionFamily):
    """`measure(text) == N`; `measure` returns None where no N can hold."""

    count_arg: ClassVar[str]

    def measure(self, text: str) -> int | None:
        raise NotImplementedError

    def follows(self, text: str, kw: Kwargs) -> bool:
        return self.measure(text) == kw[self.count_arg]

    def _propose(self, targets: list[Target], rng: random.Random, ctx: ProposalContext) -> Kwargs | None:
        spec = next(a for a in self.args if a.name == self.count_arg)
        sat = {self.measure(r) for r, want in targets if want}
        vio = {self.measure(r) for r, want in targets if not want}
        if sat:
            if len(sat) != 1:
                return None
            (n,) = sat
            in_range = n is not None and spec.lo <= n <= spec.hi
            return {self.count_arg: n} if in_range and n not in vio else None
        known = sorted(c for c in vio if c is not None)
        center = known[len(known) // 2] if known else spec.lo
        free = [n for n in range(spec.lo, spec.hi + 1) if n not in vio]
        free.sort(key=lambda n: (abs(n - center), n))
        return {self.count_arg: rng.choice(free[:2])} if free else None
