"""Early stopping for several objectives (`search.scheduler.type: pareto`, their default).

Asynchronous successive halving, ranked by Pareto dominance instead of the first metric:
at each rung (grace_period x reduction_factor^k epochs) a trial goes on when fewer than
1/reduction_factor of the trials recorded at that rung have a better non-domination rank,
so the whole front at a rung goes on (a small, slow model and a big, accurate one alike).
ASHA on the first metric alone would stop every trial that trades accuracy for size.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler


class ParetoASHA(FIFOScheduler):
    """ASHA whose rungs rank trials by non-domination over `metrics` (each with its mode)."""

    def __init__(self, metrics: list[str], modes: list[str], max_t: int, grace_period: int,
                 reduction_factor: float, time_attr: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.metrics, self.time_attr, self.reduction_factor = metrics, time_attr, reduction_factor
        self.signs = [1.0 if mode == "min" else -1.0 for mode in modes]
        rungs, rung = [], grace_period
        while rung < max_t:
            rungs.append(rung)
            rung = max(rung + 1, math.ceil(rung * reduction_factor))
        # rung epoch -> trial id -> its metrics there, all to minimize (Tune's state keeps it).
        self.recorded: dict[int, dict[str, tuple[float, ...]]] = {r: {} for r in rungs}

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # ranks on its own metrics, whatever Tune's single one

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        epoch = result.get(self.time_attr)
        if epoch is None:
            return TrialScheduler.CONTINUE
        for rung in sorted(self.recorded, reverse=True):
            if epoch >= rung:
                recorded = self.recorded[rung]
                if trial.trial_id in recorded:
                    break  # decided at this rung already
                recorded[trial.trial_id] = tuple(
                    sign * float(result.get(metric, math.nan))
                    for sign, metric in zip(self.signs, self.metrics, strict=True))
                return (TrialScheduler.CONTINUE if self.goes_on(rung, trial.trial_id)
                        else TrialScheduler.STOP)
        return TrialScheduler.CONTINUE

    def goes_on(self, rung: int, trial_id: str) -> bool:
        """Whether `trial_id` ranks in the top 1/reduction_factor at `rung`."""
        ids = list(self.recorded[rung])
        ranks = dict(zip(ids, pareto_ranks([self.recorded[rung][i] for i in ids]), strict=True))
        better = sum(1 for rank in ranks.values() if rank < ranks[trial_id])
        return better < math.ceil(len(ids) / self.reduction_factor)

    def debug_string(self) -> str:
        return f"ParetoASHA: rungs {sorted(self.recorded)}"


def pareto_ranks(points: list[tuple[float, ...]]) -> list[float]:
    """Each point's non-domination rank, every coordinate minimized: 0 for the front, 1 for
    the front once it is removed, ...; a point with a NaN ranks last (infinity)."""
    ranks = [math.inf] * len(points)
    left = {i for i, point in enumerate(points) if not any(math.isnan(v) for v in point)}
    rank = 0
    while left:
        front = {i for i in left if not any(_dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b
