-- One server, three databases: MLflow's runs and registry, MLflow's users (basic auth), and
-- trialforge's catalog with Optuna's studies (the POSTGRES_DB the server creates itself).
-- Both MLflow and Optuna keep an `alembic_version` table, so they cannot share a database.
CREATE DATABASE mlflow OWNER trialforge;
CREATE DATABASE mlflow_auth OWNER trialforge;
