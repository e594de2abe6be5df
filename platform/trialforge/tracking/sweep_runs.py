"""The sweep's parent run in MLflow, opened (waiting out an outage) before any trial starts;
and how each state ends a run. Every later write is the `recorder.SweepRecorder`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from trialforge.tracking.outage import wait_out
from trialforge.tracking.tags import TAG_KIND, TAG_STATE, TAG_SWEEP

# How each trial state (train.contract.TrialState) ends its MLflow run.
RUN_STATUS = {
    "completed": "FINISHED",
    "stopped_early": "FINISHED",
    "diverged": "FAILED",
    "failed": "FAILED",
    "interrupted": "KILLED",
    # and for the parent run, how the sweep ended
    "finished": "FINISHED",
}


@dataclass(frozen=True)
class TrackingTarget:
    """The sweep's experiment and parent run, under which its trials' runs are nested."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_id: str


def open_sweep_run(
    tracking_uri: str, experiment: str, sweep_id: str, spec_yaml: str, artifact_root: Path | None
) -> TrackingTarget:
    """Create (or reuse) the experiment and open the sweep's parent run, with its spec.

    Each step finds what a request whose answer was lost created, so the whole is sent again
    after an outage.
    """
    client = MlflowClient(tracking_uri)

    def open_run() -> TrackingTarget:
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = str(found.experiment_id)
        else:
            location = (artifact_root / experiment).as_uri() if artifact_root else None
            experiment_id = client.create_experiment(experiment, artifact_location=location)
        runs = client.search_runs(
            [experiment_id], max_results=1,
            filter_string=f"tags.`{TAG_SWEEP}` = '{sweep_id}' and tags.`{TAG_KIND}` = 'sweep'")
        run_id = runs[0].info.run_id if runs else client.create_run(
            experiment_id, run_name=f"sweep-{sweep_id}",
            tags={TAG_SWEEP: sweep_id, TAG_KIND: "sweep", TAG_STATE: "running"}).info.run_id
        client.log_text(run_id, spec_yaml, "spec.yaml")
        return TrackingTarget(tracking_uri, experiment_id, run_id, sweep_id)

    return wait_out(tracking_uri, f"the run of sweep {sweep_id}", open_run)
