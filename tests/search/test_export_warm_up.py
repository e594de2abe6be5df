"""When the driver pays torch.export's set-up: once a trial slot stays idle for good."""

from __future__ import annotations

from trialforge.search.progress import Progress
from trialforge.search.sweep import _ExportWarmUp


def _progress(running: int, done: int, total: int = 4) -> Progress:
    return Progress(total=total, metric="val_accuracy", mode="max", max_epochs=3,
                    running=running, completed=done)


def test_the_warm_up_waits_for_an_idle_slot_once_every_trial_started() -> None:
    seen: list[int] = []
    warm_up = _ExportWarmUp(slots=2)
    for running, done in [(1, 0), (2, 0), (2, 1), (2, 2)]:  # trials still to start, or 2 run
        warm_up.offer(_progress(running, done), then=lambda p: seen.append(p.done))
        assert warm_up.thread is None
    assert seen == [0, 0, 1, 2], "the progress view is still told every change"
    warm_up.offer(_progress(1, 3), then=None)  # the last trial runs alone: a core is free
    assert warm_up.thread is not None
    started = warm_up.thread
    warm_up.offer(_progress(0, 4), then=None)
    assert warm_up.thread is started, "started once"
    warm_up.join()
    assert not started.is_alive()


def test_nothing_warms_up_when_nothing_registers() -> None:
    warm_up = _ExportWarmUp(slots=0)
    warm_up.offer(_progress(0, 4), then=None)
    assert warm_up.thread is None
    warm_up.join()
