"""Deployments: the scheduled end-to-end pipeline and one deployment per stage.

`mapl serve` serves them all from this process with Prefect's runner (`prefect.serve`): schedules fire and
runs triggered from the UI or `prefect deployment run` execute here. To run them on workers on other machines
instead, deploy them to a work pool (`deployments/prefect.yaml`, see docs/orchestration.md).
"""

from __future__ import annotations

from typing import Any

from flows.pipeline import DEFAULT_CONFIG, mapl_pipeline
from flows.stages import STAGE_FLOWS

NIGHTLY = "0 3 * * *"  # every night at 03:00


def deployments(
    config: str = DEFAULT_CONFIG, data_root: str = ".mapl", cron: str | None = NIGHTLY
) -> list[Any]:
    """RunnerDeployments for `prefect.serve`: `mapl-pipeline/scheduled` (on `cron`) and `mapl-stage-*/manual`."""
    params = {"config": config, "data_root": data_root}
    about = "The end-to-end MAPL pipeline: ingest → conditions → sampling → contracts → train → evaluate"
    out = [
        mapl_pipeline.to_deployment(
            name="scheduled", cron=cron, parameters=params, tags=["mapl"], description=about
        )
    ]
    for stage, fl in STAGE_FLOWS.items():
        about = (fl.description or "").splitlines()[0]
        out.append(
            fl.to_deployment(name="manual", parameters=params, tags=["mapl", stage], description=about)
        )
    return out
