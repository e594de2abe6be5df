"""Training: one epoch loop (`loop.py`) run in-process or on TorchTrainer workers (`trial.py`)."""

from trialforge.train.loop import train_loop
from trialforge.train.session import TrialSession

__all__ = ["TrialSession", "train_loop"]
