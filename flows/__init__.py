"""Prefect flows composing the tasks (end-to-end and per stage); the orchestration issue fills this package."""
