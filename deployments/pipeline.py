"""Deployments: the scheduled end-to-end pipeline and one deployment per stage, defined once here.

`mapl serve` serves them all from this process with Prefect's runner (`prefect.serve`): schedules fire and
runs triggered from the UI or `prefect deployment run` execute here. To run them on workers on other machines
instead, deploy them to a work pool with `deployments/prefect.yaml`, which this module writes
(`python -m deployments.pipeline > deployments/prefect.yaml`; a test keeps the file equal to its output).
"""

from __future__ import annotations

from typing import Any

import yaml

from flows.pipeline import DEFAULT_CONFIG, mapl_pipeline
from flows.stages import STAGE_FLOWS
from mapl_core.pipeline.config import NIGHTLY

PIPELINE = "The end-to-end MAPL pipeline: ingest → conditions → sampling → contracts → train → evaluate"


def specs() -> list[dict[str, Any]]:
    """Every deployment: its flow, entry point, name, tags and description; the pipeline's is scheduled."""
    out = [{"flow": mapl_pipeline, "entrypoint": "flows/pipeline.py:mapl_pipeline", "name": "scheduled",
            "tags": ["mapl"], "description": PIPELINE, "scheduled": True}]  # fmt: skip
    for stage, fl in STAGE_FLOWS.items():
        out.append({"flow": fl, "entrypoint": f"flows/stages.py:{fl.fn.__name__}", "name": "manual",
                    "tags": ["mapl", stage], "description": (fl.description or "").splitlines()[0],
                    "scheduled": False})  # fmt: skip
    return out


def deployments(
    config: str = DEFAULT_CONFIG, data_root: str = ".mapl", cron: str | None = NIGHTLY
) -> list[Any]:
    """RunnerDeployments for `prefect.serve`: `mapl-pipeline/scheduled` (on `cron`) and `mapl-stage-*/manual`."""
    params = {"config": config, "data_root": data_root}
    return [
        s["flow"].to_deployment(
            name=s["name"],
            cron=cron if s["scheduled"] else None,
            parameters=params,
            tags=s["tags"],
            description=s["description"],
        )
        for s in specs()
    ]


HEADER = """\
# Written by `python -m deployments.pipeline > deployments/prefect.yaml` from deployments/pipeline.py: edit
# that module, not this file. Deploy mapl's flows to a work pool, for workers on other machines
# (see docs/orchestration.md):
#   prefect work-pool create mapl --type process
#   prefect deploy --all --prefect-file deployments/prefect.yaml
#   prefect worker start --pool mapl          # on each worker machine, in a checkout with .venv
# Workers read the data root given here: point it at storage every worker shares.
"""


def prefect_yaml(config: str = "configs/pipeline_small.yaml") -> str:
    """The same deployments as `prefect deploy` reads them, for a work pool named `mapl`."""
    params = {"config": config, "data_root": "{{ $MAPL_DATA_ROOT }}"}
    entries = []
    for s in specs():
        entry = {"name": s["name"], "entrypoint": s["entrypoint"], "description": s["description"]}
        if s["scheduled"]:
            entry["schedules"] = [{"cron": NIGHTLY}]
        entries.append(
            {**entry, "parameters": dict(params), "work_pool": {"name": "mapl"}, "tags": s["tags"]}
        )
    from prefect import __version__

    spec = {"name": "mapl", "prefect-version": __version__,
            "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $MAPL_CHECKOUT }}"}}],
            "deployments": entries}  # fmt: skip
    return HEADER + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=110)


if __name__ == "__main__":
    print(prefect_yaml(), end="")
