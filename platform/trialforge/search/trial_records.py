"""What each trial's MLflow run and catalog row say of it, besides its metrics: its stage,
configuration and seed, where its knobs came from, and how it ended."""

from __future__ import annotations

import json
from typing import Any

from trialforge.catalog import Catalog, TrialRecord, utcnow
from trialforge.search.confirm import config_id
from trialforge.search.monitor import TrialLedger
from trialforge.search.warm_start import WarmStart
from trialforge.tracking.provenance import TAG_TRIAL_SPEC
from trialforge.tracking.tags import TAG_CONFIG, TAG_ORIGIN, TAG_SEED, TAG_STAGE
from trialforge.train.trial import TrialContext


def describe_trial(
    context: TrialContext, stage: str, warm: WarmStart | None, config: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A trial's MLflow params (its knobs and the spec's) and tags: its stage, configuration
    and seed; the earlier trial it re-evaluates (`search.warm_start`); its backbone's
    lineage; what a replay needs (its whole spec, the data's fingerprint, the code's and
    packages' versions)."""
    spec = context.spec.with_params(config)
    origin = warm.origin(config) if warm is not None else None
    return spec.trial_params(config), {
        **context.lineage(spec), **context.provenance, TAG_STAGE: stage,
        TAG_CONFIG: config_id(config), TAG_SEED: str(spec.seed),
        TAG_TRIAL_SPEC: json.dumps(spec.to_dict()), **({TAG_ORIGIN: origin} if origin else {})}


def record_trial(catalog: Catalog, sweep_id: str, stage: str, seed: int,
                 warm: WarmStart | None, trial: TrialLedger, run_id: str | None) -> None:
    """The catalog's row of an ended trial: its state, score, configuration and seed, the
    constraints it broke, the earlier trial it re-evaluated. The run id may not be known yet
    (MLflow is written behind): the sweep's end fills it."""
    catalog.record_trial(TrialRecord(
        sweep_id=sweep_id, trial_id=trial.trial_id, run_id=run_id, state=trial.state,
        failure=trial.failure, reason=trial.reason, epochs=trial.epochs,
        value=trial.best.value, ended_at=utcnow(), stage=stage,
        config_id=config_id(trial.config), seed=int(trial.config.get("seed", seed)),
        infeasible=trial.infeasible,
        origin=warm.origin(trial.config) if warm is not None else None))
