"""Moving a registry alias (champion, challenger) to another version: a person's decision."""

from __future__ import annotations

import re

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from trialforge.errors import NotFoundError, TrialforgeError
from trialforge.home import sqlite_file

# MLflow's own rule: `latest` and `vN` would shadow version references.
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")
_RESERVED = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


def set_alias(tracking_uri: str, name: str, version: int | str, alias: str) -> str | None:
    """Point `alias` of model `name` at `version`; returns the version it pointed at before
    (None if it is new). Unknown model or version: `NotFoundError`; bad alias: an error that
    says the rule."""
    if not _ALIAS.match(alias) or _RESERVED.match(alias):
        raise TrialforgeError(
            f"alias {alias!r} is not allowed: use letters, digits, '_' or '-', starting with "
            "a letter, and not 'latest' or 'v<number>' (e.g. champion, challenger)"
        )
    store = sqlite_file(tracking_uri)
    if store is not None and not store.exists():  # opening it would create an empty store
        raise NotFoundError(
            f"no registered model {name!r}: there is no MLflow store at {store} yet "
            "(a finished sweep registers its best model; check --home or TRIALFORGE_HOME)"
        )
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    try:
        model = client.get_registered_model(name)
        client.get_model_version(name, str(version))
    except MlflowException:
        raise NotFoundError(
            f"no version {version} of registered model {name!r}: "
            "see `trialforge model list` for the versions"
        ) from None
    previous = (model.aliases or {}).get(alias)
    client.set_registered_model_alias(name, alias, str(version))
    return str(previous) if previous is not None else None
