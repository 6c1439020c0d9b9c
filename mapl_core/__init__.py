"""mapl core library: instructions, construction, losses, trainers, generation, evaluation, storage."""
