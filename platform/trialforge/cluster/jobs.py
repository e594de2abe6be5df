"""A sweep as a Ray job: the same `trialforge sweep run`, started on the cluster by Ray's
Jobs API (`JobSubmissionClient`), with the shared stores passed in its environment.

The job's working directory is the folder the user submits from (like `ray job submit
--working-dir .`; Ray leaves out what `.gitignore` lists), so the spec, a user's own builder
and relative data paths resolve there as they do locally.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialforge.errors import TrialforgeError

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
# What a job must not carry to the cluster: environments, stores, caches, outputs (Ray leaves
# out .git and what .gitignore lists by itself).
EXCLUDES = [".venv", "venv", ".trialforge", "__pycache__", "*.pyc", "mlruns",
            "test-artifacts", ".mypy_cache", ".ruff_cache", ".pytest_cache"]
STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "TRIALFORGE_DB", "TRIALFORGE_HOME",
                   "TRIALFORGE_RAY_STORAGE", "MLFLOW_TRACKING_USERNAME",
                   "MLFLOW_TRACKING_PASSWORD")


def auth_token() -> tuple[str | None, str]:
    """Ray's token the way Ray finds it: `RAY_AUTH_TOKEN`, the file `RAY_AUTH_TOKEN_PATH`
    names, or `~/.ray/auth_token`; with where it came from (for error messages)."""
    if token := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return token, "RAY_AUTH_TOKEN"
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text().strip() or None, str(path)
    except OSError:
        return None, "no token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH and ~/.ray/auth_token unset)"


@dataclass(frozen=True)
class Submission:
    """What to run on the cluster: an entrypoint, its working directory and environment."""

    entrypoint: str
    working_dir: Path
    env: dict[str, str] = field(default_factory=dict)


def submission(
    spec: Path, overrides: Sequence[str], sweep_id: str, stores: Mapping[str, str],
    working_dir: Path | None = None,
) -> Submission:
    """The job of sweep `spec`: `trialforge sweep run` inside `working_dir` (default: the
    current folder, which must hold the spec)."""
    working_dir = (working_dir or Path.cwd()).resolve()
    try:
        relative = spec.resolve().relative_to(working_dir)
    except ValueError:
        raise TrialforgeError(
            f"the spec {spec} is outside {working_dir}, the folder sent to the cluster: "
            "submit from a folder that holds it"
        ) from None
    words = ["trialforge", "sweep", "run", relative.as_posix(), *overrides]
    env = {"TRIALFORGE_SWEEP_ID": sweep_id, **stores}
    return Submission(shlex.join(words), working_dir, env)


class JobClient:
    """Ray's `JobSubmissionClient` for one cluster, with its failures as clear errors."""

    def __init__(self, cluster: str) -> None:
        from ray.job_submission import JobSubmissionClient

        if not re.fullmatch(r"https?://[^/\s]+/?", cluster):
            # Without a scheme Ray takes it for a GCS address and waits on it for a minute.
            raise TrialforgeError(
                f"--cluster {cluster!r} is not the cluster's dashboard URL: write "
                "http://HEAD:8265 (the Jobs API, not Ray's GCS port)"
            )
        self.cluster = cluster
        token, self._token_source = auth_token()
        self._headers = {"Authorization": f"Bearer {token}"} if token else None
        self.client = self._call(JobSubmissionClient, cluster, headers=self._headers)

    def resources(self) -> dict[str, float] | None:
        """What the cluster's live nodes hold in all (Ray's resource names: CPU, GPU, ...);
        None where the cluster does not say (its state API is off or too old)."""
        from ray.util.state.api import StateApiClient
        from ray.util.state.common import ListApiOptions, StateResource

        try:
            nodes = StateApiClient(self.cluster, headers=self._headers).list(
                StateResource.NODES, ListApiOptions(filters=[("state", "=", "ALIVE")]),
                raise_on_missing_output=False)
        except Exception:  # one that cannot be asked is checked by the job itself, once it runs
            return None
        totals: dict[str, float] = {}
        for node in nodes:
            for name, amount in (getattr(node, "resources_total", None) or {}).items():
                totals[name] = totals.get(name, 0.0) + float(amount)
        return totals

    def submit(self, job_id: str, job: Submission) -> str:
        runtime_env = {"working_dir": str(job.working_dir), "excludes": EXCLUDES,
                       "env_vars": job.env}
        return str(self._call(self.client.submit_job, entrypoint=job.entrypoint,
                              submission_id=job_id, runtime_env=runtime_env))

    def status(self, job_id: str) -> tuple[str, str | None]:
        """Ray's status of the job, and its message (why it failed)."""
        info = self._call(self.client.get_job_info, job_id)
        return str(info.status.value), info.message

    def logs(self, job_id: str) -> str:
        return str(self._call(self.client.get_job_logs, job_id))

    def follow(self, job_id: str) -> Iterator[str]:
        """The job's log as it is written, until the job ends."""
        import asyncio

        loop = asyncio.new_event_loop()
        stream = self.client.tail_job_logs(job_id)
        try:
            while True:
                try:
                    yield loop.run_until_complete(anext(stream))
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    raise self._error(exc) from None
        finally:
            loop.run_until_complete(stream.aclose())
            loop.close()

    def stop(self, job_id: str, timeout_s: float = 60) -> str:
        """Ask Ray to stop the job (SIGTERM, then SIGKILL) and wait until it has ended."""
        self._call(self.client.stop_job, job_id)
        deadline = time.monotonic() + timeout_s
        while (state := self.status(job_id)[0]) not in TERMINAL:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        return state

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> TrialforgeError:
        from ray.exceptions import AuthenticationError
        from requests.exceptions import ConnectionError as Unreachable

        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, AuthenticationError) or "401" in text or "403" in text:
            return TrialforgeError(
                f"the Ray cluster at {self.cluster} refused the token ({self._token_source}): "
                "set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH, to the cluster's token "
                "(`ray get-auth-token` on its head node)"
            )
        if isinstance(exc, (Unreachable, ConnectionError)) or "Failed to connect" in text:
            return TrialforgeError(
                f"cannot reach the Ray cluster at {self.cluster}: is it running, and is this "
                "its dashboard address (http://HEAD:8265)?"
            )
        if "does not exist" in text or "not found" in text.lower():
            return TrialforgeError(f"the cluster at {self.cluster} has no such job: {text}")
        return TrialforgeError(f"the Ray cluster at {self.cluster} said: {text}")
