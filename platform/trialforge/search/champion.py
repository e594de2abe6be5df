"""Which trial a sweep registers: its champion, by the scoring rule (`train.contract`).

The champion is the best-scored trial among those that ran their whole budget. With one
objective and a search space Optuna scores the sweep, and its best trial is the champion, so
`optuna.load_study(...).best_trial` is the registered one by construction; otherwise (no
space, several objectives (the first ranks), pbt/pb2, or an earlier sweep's trial at the top
of a warm-started study) the monitor's ledger applies the same rule. A trial that broke
`search.constraints` is never the champion (nor Optuna's best).
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
    search = spec.search
    if search.space and not search.multi_objective and not search.scheduler.evolves:
        trial_id = optuna_champion(optuna_storage(home), study_name(sweep_id))
        # Optuna's best may be an earlier sweep's trial (search.warm_start), not this one's.
        if trial_id is not None and trial_id in monitor.trials:
            return monitor.best_trial(trial_id)
    return best_scored(monitor)


def best_scored(monitor: TrialMonitor) -> BestTrial | None:
    """The best-scored feasible trial that completed; if none did, the best-scored feasible
    one of any. Ties go to the trial that started first (as Optuna's best trial does: the
    lowest number)."""
    scored = [(trial_id, ledger) for trial_id, ledger in monitor.trials.items()
              if ledger.best.value is not None and ledger.infeasible is None]
    completed = [(t, ledger) for t, ledger in scored if ledger.state == TrialState.COMPLETED.value]
    best: tuple[str, float | None] | None = None
    for trial_id, ledger in completed or scored:
        if best is None or improves(ledger.best.value, best[1], monitor.progress.mode):
            best = (trial_id, ledger.best.value)
    return monitor.best_trial(best[0]) if best is not None else None
