"""mapl core library: instructions, construction, losses, trainers, generation, evaluation, storage."""

__version__ = "0.1.0"
