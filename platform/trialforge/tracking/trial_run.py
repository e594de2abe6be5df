"""The MLflow run of one trial, seen from its single writer (the trial, or the driver that
completes it): created even while MLflow is away, and every write safe to repeat."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from trialforge.tracking.mlflow import (
    BEST_CHECKPOINT_DIR,
    EPOCH_MARKER,
    METRICS_PER_CALL,
    TAG_BEST_EPOCH,
    TAG_KIND,
    TAG_STATE,
    TAG_SWEEP,
    TAG_TRIAL,
    TrackingTarget,
    end_run,
    param_value,
)
from trialforge.tracking.outage import is_transient, patience, reachable
from trialforge.tracking.outbox import (
    Best,
    End,
    Entry,
    Epoch,
    Epochs,
    epoch_batches,
    sorted_epochs,
    unlogged,
)

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRecipe:
    """What creates a trial's run, kept until it exists: a trial that starts while MLflow
    is unreachable trains at once, and its run is created when MLflow is back."""

    target: TrackingTarget
    trial_id: str
    trial_name: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class TrialRun:
    """The child run of one trial, seen from the trial's single writer.

    Epochs a resumed trial trains again (up to `logged_epochs`) are not logged twice: the
    loop is seeded per epoch, so their values would be the same. Every write can be repeated
    safely (a request whose answer was lost may have been applied): the run is found again by
    its trial tag, and `logged_epochs` is read back from the run before epochs are resent.

    A trial sends through a `Courier` (`send`, never waiting on MLflow); the driver calls
    `log_epochs`, `log_best_checkpoint` and `end`, which wait out an outage (`Patience`).
    `run_id` is None while the run waits to be created (see `RunRecipe`).
    """

    def __init__(
        self,
        tracking_uri: str,
        run_id: str | None,
        logged_epochs: int = 0,
        recipe: RunRecipe | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        self.run_id = run_id
        self.logged_epochs = logged_epochs
        self.recipe = recipe
        self._synced = False  # whether logged_epochs was read from the run

    def __getstate__(self) -> dict[str, Any]:
        # Picklable, for the worker that logs a TorchTrainer trial: a client holds locks.
        return {"tracking_uri": self.tracking_uri, "run_id": self.run_id, "recipe": self.recipe}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["tracking_uri"], state["run_id"],  # type: ignore[misc]
                      recipe=state["recipe"])

    @property
    def label(self) -> str:
        """The trial's name (or the run's id) for log messages."""
        return self.recipe.trial_name if self.recipe is not None else f"run {self.run_id}"

    @classmethod
    def open(
        cls,
        target: TrackingTarget,
        trial_id: str,
        trial_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
    ) -> TrialRun:
        """Reuse the run of `trial_id` if Ray restarted the trial, else create it (with
        `params`, and `tags` such as the backbone's lineage). If MLflow is unreachable, the
        run is created by the first write that reaches it; training does not wait."""
        recipe = RunRecipe(target, trial_id, trial_name,
                           {key: param_value(value) for key, value in params.items()},
                           dict(tags or {}))
        run = cls(target.tracking_uri, None, recipe=recipe)
        try:
            if reachable(target.tracking_uri):
                run.ensure_open()
                return run
        except Exception as exc:
            if not is_transient(exc):
                raise
        logger.warning("MLflow at %s is unreachable: trial %s trains now; its run is created "
                       "when MLflow is back", target.tracking_uri, trial_name)
        return run

    @classmethod
    def attach(cls, tracking_uri: str, run_id: str) -> TrialRun:
        """The run a trial's driver opened, for the worker of rank 0 that logs to it."""
        run = cls(tracking_uri, run_id)
        try:
            if reachable(tracking_uri):
                run.refresh()
        except Exception as exc:
            if not is_transient(exc):
                raise  # else read before the first write that reaches MLflow
        return run

    def pending_recipe(self) -> dict[str, Any] | None:
        """While the run does not exist, what creates it, for a checkpoint to carry: if the
        trial's process ends before MLflow is back, the driver creates it (`from_recipe`)."""
        if self.run_id is not None or self.recipe is None:
            return None
        recipe = self.recipe
        return {"trial_id": recipe.trial_id, "trial_name": recipe.trial_name,
                "params": dict(recipe.params), "tags": dict(recipe.tags)}

    @classmethod
    def from_recipe(cls, target: TrackingTarget, recipe: Mapping[str, Any]) -> TrialRun:
        """The run a checkpoint's `pending_recipe` describes, found or created now (waiting
        out an outage): the driver completing a trial whose run was never created."""
        run = cls(target.tracking_uri, None, recipe=RunRecipe(
            target, str(recipe["trial_id"]), str(recipe["trial_name"]),
            dict(recipe.get("params", {})), dict(recipe.get("tags", {}))))
        patience(target.tracking_uri).call(f"the run of trial {run.label}", run.ensure_open)
        return run

    def ensure_open(self) -> str:
        """The run's id, once the run exists (creating it, or finding the one a restarted
        trial or an unanswered request created) and its logged epochs are known."""
        if self.run_id is None:
            if self.recipe is None:
                raise ValueError("a TrialRun needs a run id or a recipe")
            self.run_id = self._find_or_create(self.recipe)
            self._synced = False
        if not self._synced:
            self.refresh()
        return self.run_id

    def refresh(self) -> None:
        """Read which epochs the run has (its last step of `EPOCH_MARKER`)."""
        if self.run_id is None:
            return
        history = self.client.get_metric_history(self.run_id, EPOCH_MARKER)
        self.logged_epochs = max((m.step for m in history), default=0)
        self._synced = True

    def forget_logged(self) -> None:
        """After a write whose answer was lost: read the run again before the next one."""
        self._synced = False

    def send(self, entry: Entry) -> None:
        """Write one outbox entry now (it raises if MLflow fails: the caller retries)."""
        run_id = self.ensure_open()
        if isinstance(entry, Epochs):
            self._send_epochs(run_id, entry.items)
        elif isinstance(entry, Best):
            self.client.log_artifact(run_id, str(entry.path), BEST_CHECKPOINT_DIR)
            for name, image in entry.images.items():
                self.client.log_image(run_id, image, artifact_file=f"{name}.png")
            self.client.set_tag(run_id, TAG_BEST_EPOCH, str(entry.epoch))
        elif isinstance(entry, End):
            end_run(self.client, run_id, entry.state, entry.reason)
        else:
            entry.send()

    def log_epochs(self, epochs: Iterable[Epoch]) -> None:
        """(epoch, metrics, timestamp in ms) of several epochs; epochs logged already are
        skipped. Waits out an outage."""
        self._patiently("the epochs", Epochs(tuple(sorted_epochs(epochs))))

    def log_best_checkpoint(
        self, path: Path, epoch: int, images: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """Replace the run's best checkpoint with the one at `path`, and its epoch's images
        (`NAME.png` at the artifact root: a confusion matrix, GAN samples). Waits out an
        outage."""
        self._patiently("the best checkpoint", Best(path, epoch, dict(images or {})))

    def end(self, state: str, reason: str | None = None) -> None:
        """Record how the trial ended (the driver does it for trials that cannot). Waits
        out an outage."""
        self._patiently("how it ended", End(state, reason))

    def _patiently(self, what: str, entry: Entry) -> None:
        patience(self.tracking_uri).call(f"{what} of trial {self.label}",
                                         lambda: self.send(entry), resync=self.forget_logged)

    def _send_epochs(self, run_id: str, epochs: Iterable[Epoch]) -> None:
        # Whole epochs per request, in order: after a failure, the run's last logged epoch
        # says exactly which requests arrived.
        for batch in epoch_batches(unlogged(epochs, self.logged_epochs), METRICS_PER_CALL):
            metrics = [Metric(key, float(value), stamp, epoch)
                       for epoch, values, stamp in batch for key, value in values.items()]
            for start in range(0, len(metrics), METRICS_PER_CALL):
                self.client.log_batch(run_id, metrics=metrics[start : start + METRICS_PER_CALL])
            self.logged_epochs = batch[-1][0]

    def _find_or_create(self, recipe: RunRecipe) -> str:
        target = recipe.target
        existing = self.client.search_runs(
            [target.experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{target.sweep_id}' "
            f"and tags.`{TAG_TRIAL}` = '{recipe.trial_id}'",
            max_results=1,
        )
        if existing:
            run_id: str = existing[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            run_id = self.client.create_run(
                target.experiment_id,
                run_name=recipe.trial_name,
                tags={
                    MLFLOW_PARENT_RUN_ID: target.parent_run_id,
                    TAG_SWEEP: target.sweep_id,
                    TAG_TRIAL: recipe.trial_id,
                    TAG_KIND: "trial",
                    TAG_STATE: "running",
                    **recipe.tags,
                },
            ).info.run_id
        # Again on a found run: its creator may have died before logging them, and MLflow
        # takes a param logged twice with the same value.
        params = [Param(key, value) for key, value in recipe.params.items()]
        for start in range(0, len(params), 100):  # MLflow takes 100 params per batch
            self.client.log_batch(run_id, params=params[start : start + 100])
        return run_id
