"""The pipeline's stages as plain Python (the Prefect tasks in `tasks/` are thin wrappers around these)."""
