"""The pure parts of a cluster job: which token is used, and what the job runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialforge.cluster import auth_token, submission
from trialforge.errors import TrialforgeError


def test_the_token_is_found_where_ray_looks_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert auth_token()[0] is None and "unset" in auth_token()[1]
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    assert auth_token() == ("from-home", str(tmp_path / ".ray" / "auth_token"))
    named = tmp_path / "cluster_token"
    named.write_text("from-path")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(named))
    assert auth_token() == ("from-path", str(named))
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert auth_token() == ("from-env", "RAY_AUTH_TOKEN")


def test_the_job_runs_the_same_cli_from_the_submitted_folder(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    spec = tmp_path / "jobs" / "my sweep.yaml"
    spec.write_text("name: x\n")
    job = submission(spec, ["search.trials=2"], "abcd1234",
                     {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, working_dir=tmp_path)
    assert job.entrypoint == "trialforge sweep run 'jobs/my sweep.yaml' search.trials=2"
    assert job.working_dir == tmp_path.resolve()
    assert job.env == {"TRIALFORGE_SWEEP_ID": "abcd1234",
                       "MLFLOW_TRACKING_URI": "http://mlflow:5000"}


def test_a_spec_outside_the_submitted_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    spec = tmp_path / "elsewhere.yaml"
    spec.write_text("name: x\n")
    with pytest.raises(TrialforgeError, match=r"outside .*project, the folder sent to the cluster"):
        submission(spec, [], "abcd1234", {}, working_dir=tmp_path / "project")
