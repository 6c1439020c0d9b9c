"""Thin Prefect tasks over mapl_core (cached, retryable); the orchestration issue fills this package."""
