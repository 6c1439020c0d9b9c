"""Text generation: one interface over vLLM (offline engine) and transformers, with a resumable cache."""
