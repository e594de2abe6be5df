"""Sweeps on a Ray cluster through the Ray Jobs API: submit, follow, list, stop."""

from trialforge.cluster.jobs import JobClient, Submission, auth_token, submission

__all__ = ["JobClient", "Submission", "auth_token", "submission"]
