"""The plain Optuna + PyTorch + MLflow script a user would write for the demo's work (B0).

The same CNN on scikit-learn's digits as `jobs/cnn_digits.yaml`, the same 4-knob space, 24
trials of 12 epochs, 2 at a time (`study.optimize(n_jobs=2)`: threads sharing one GIL), TPE
(multivariate, constant liar) with a successive-halving pruner (min 2 epochs, factor 3), one
nested MLflow run per trial in a sqlite store. It has no resume, no catalog, no typed failures
and no registry; `b0_script.py` runs it against `trialforge sweep run`.

Run: python benchmarks/plain_script.py --store DIR [--trials 24] [--epochs 12] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow
import numpy as np
import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def cnn(dropout: float, batchnorm: bool, activation: str) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 1
    for block in range(2):  # 8x8 -> 4x4 -> 2x2, channels 16 -> 32
        out = 16 * 2**block
        layers += [nn.Conv2d(channels, out, 3, padding=1, bias=not batchnorm),
                   *([nn.BatchNorm2d(out)] if batchnorm else []),
                   ACTIVATIONS[activation](), nn.MaxPool2d(2)]
        channels = out
    layers += [nn.Flatten(), nn.Linear(channels * 2 * 2, 64), ACTIVATIONS[activation](),
               nn.Dropout(dropout), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    x_train, x_val, y_train, y_val = (torch.from_numpy(a) for a in train_test_split(
        x, digits.target, test_size=0.2, stratify=digits.target, random_state=args.seed))

    mlflow.set_tracking_uri(f"sqlite:///{args.store}/mlflow.db")
    experiment_id = mlflow.set_experiment("plain-script").experiment_id
    client = mlflow.MlflowClient()

    def objective(trial: optuna.Trial, parent: str) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.6)
        batchnorm = trial.suggest_categorical("batchnorm", [True, False])
        activation = trial.suggest_categorical("activation", ["relu", "tanh", "sigmoid"])
        torch.manual_seed(args.seed + trial.number)
        model = cnn(dropout, batchnorm, activation)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        run_id = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent},
                                   run_name=f"trial-{trial.number}").info.run_id
        client.log_batch(run_id, params=[mlflow.entities.Param(k, str(v))
                                         for k, v in trial.params.items()])
        best = 0.0
        for epoch in range(1, args.epochs + 1):
            model.train()
            for batch in torch.randperm(len(x_train)).split(64):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
            best = max(best, accuracy)
            client.log_batch(run_id, metrics=[
                mlflow.entities.Metric("val_accuracy", accuracy, 0, epoch),
                mlflow.entities.Metric("train_loss", loss.item(), 0, epoch)])
            trial.report(accuracy, epoch)
            if trial.should_prune():
                client.set_terminated(run_id, "KILLED")
                raise optuna.TrialPruned()
        client.set_terminated(run_id)
        return best

    sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=args.seed)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    torch.set_num_threads(1)  # two trials at a time on their own threads
    with mlflow.start_run(run_name="sweep") as parent:
        study.optimize(lambda trial: objective(trial, parent.info.run_id),
                       n_trials=args.trials, n_jobs=2)
        mlflow.log_metric("best_val_accuracy", study.best_value)
    print(f"best val_accuracy {study.best_value:.4f}: {study.best_params}")


if __name__ == "__main__":
    main()
