"""Verifiable instructions (the MAPL paper's generator set G0), with IFEval's ids and argument names.

from mapl_core.instructions import get_family
fam = get_family("length_constraints:number_words")
fam.check(text, {"relation": "at least", "num_words": 100})
fam.propose([(text, True)], random.Random(0))   # arguments that `text` satisfies
fam.describe(kwargs, random.Random(0))          # the instruction as text
"""

from mapl_core.instructions.base import (
    RELATIONS,
    Arg,
    InstructionFamily,
    InvalidKwargs,
    ProposalContext,
    Target,
)
from mapl_core.instructions.loose import loose_variants
from mapl_core.instructions.registry import (
    CONFLICTS,
    INSTRUCTION_IDS,
    REGISTRY,
    UnknownInstruction,
    conflict_free,
    conflicts,
    get_family,
)

__all__ = [
    "CONFLICTS",
    "INSTRUCTION_IDS",
    "REGISTRY",
    "RELATIONS",
    "Arg",
    "InstructionFamily",
    "InvalidKwargs",
    "ProposalContext",
    "Target",
    "UnknownInstruction",
    "conflict_free",
    "conflicts",
    "get_family",
    "loose_variants",
]
