"""Prefect deployments and schedules for the flows (the orchestration issue)."""
