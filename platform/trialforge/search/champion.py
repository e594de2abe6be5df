"""Which trial a sweep registers: its champion, by the scoring rule (`train.contract`).

The champion is the best-scored trial among those that ran their whole budget. With one
objective and a search space Optuna scores the sweep, and its best trial is the champion, so
`optuna.load_study(...).best_trial` is the registered one by construction; otherwise (no
space, or several objectives: the first ranks) the monitor's ledger applies the same rule.
"""

from __future__ import annotations

from trialforge.home import Home
from trialforge.search.monitor import TrialMonitor
from trialforge.search.progress import BestTrial
from trialforge.search.searcher import optuna_champion
from trialforge.search.tuner import optuna_storage, study_name
from trialforge.spec import SweepSpec
from trialforge.train.contract import TrialState, improves


def champion(monitor: TrialMonitor, spec: SweepSpec, home: Home, sweep_id: str) -> BestTrial | None:
    """The trial whose best checkpoint the sweep registers (None: no trial has a score)."""
    if spec.search.space and not spec.search.multi_objective:
        trial_id = optuna_champion(optuna_storage(home), study_name(sweep_id))
        if trial_id is not None:
            return monitor.best_trial(trial_id)
    return best_scored(monitor)


def best_scored(monitor: TrialMonitor) -> BestTrial | None:
    """The best-scored trial that completed; if none did, the best-scored of any. Ties go
    to the trial that started first (as Optuna's best trial does: the lowest number)."""
    scored = [(trial_id, ledger) for trial_id, ledger in monitor.trials.items()
              if ledger.best.value is not None]
    completed = [(t, ledger) for t, ledger in scored if ledger.state == TrialState.COMPLETED.value]
    best: tuple[str, float | None] | None = None
    for trial_id, ledger in completed or scored:
        if best is None or improves(ledger.best.value, best[1], monitor.progress.mode):
            best = (trial_id, ledger.best.value)
    return monitor.best_trial(best[0]) if best is not None else None
