"""The trialforge dashboard: `trialforge dashboard` serves it (Streamlit, read-only).

Four pages read the catalog, MLflow and the Optuna studies through `trialforge.query`; the
one write is setting a registry alias on the Models page, after a confirmation.
"""

from __future__ import annotations

import os

import loaders
import optuna
import streamlit as st

from trialforge.home import redact

optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per in-memory study
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
st.set_page_config(page_title="trialforge", page_icon=":material/tune:", layout="wide")

# The pages live in views/, not pages/: Streamlit would serve a pages/ folder beside the app
# as pages of their own, listing them raw on a deep link opened before the app first ran.
PAGES = [
    st.Page("views/sweeps.py", title="Sweeps", icon=":material/list:", default=True),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("views/run.py", title="Run", icon=":material/monitoring:"),
    st.Page("views/registry.py", title="Models", icon=":material/inventory_2:", url_path="models"),
]
page = st.navigation(PAGES)
where = loaders.home()
st.sidebar.caption(f"MLflow: `{redact(where.tracking_uri)}`  \ncatalog: `{redact(where.db_url)}`")
page.run()
