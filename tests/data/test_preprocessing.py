"""Preprocessing fitted on the training split only, carried as JSON, and the same transform
for training and serving; the test split that trials never see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from make_images import write_images

from trialforge import parse_spec
from trialforge.data import load_dataset
from trialforge.data.preprocessing import Preprocessing, TableInputs, TextInputs
from trialforge.data.split import split_indices
from trialforge.errors import DataError
from trialforge.train.loop import trial_data
from trialforge.train.trial import TrialContext


def _table(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    size = rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    return pd.DataFrame({"size": size, "colour": colour,
                         "label": np.where(size > 0, "big", "small")})


def test_a_tables_statistics_come_from_its_training_rows_only(tmp_path: Path) -> None:
    frame = _table()
    codes, _ = pd.factorize(frame["label"], sort=True)
    split = split_indices("t.csv", codes, task="classification", val_fraction=0.25, seed=3)
    frame.loc[split.val, "size"] = 1000.0  # validation rows unlike any training row
    frame.loc[split.val, "colour"] = "violet"  # a value training never saw
    frame.to_csv(tmp_path / "t.csv", index=False)
    spec = parse_spec({"model": {"family": "mlp"}, "seed": 3,
                       "data": {"dataset": "table", "path": str(tmp_path / "t.csv"),
                                "target": "label", "val_fraction": 0.25}})
    data = load_dataset(spec.data, seed=spec.seed, layout="vector")
    assert data.preprocessing is not None
    inputs = data.preprocessing.inputs
    assert isinstance(inputs, TableInputs)
    train_sizes = frame.loc[split.train, "size"]
    assert inputs.mean == pytest.approx([train_sizes.mean()])
    assert inputs.std == pytest.approx([train_sizes.std(ddof=0)])
    assert inputs.categories == {"colour": ["blue", "green", "red"]}, "no 'violet'"
    assert float(data.x_train[:, 0].mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(data.x_val[:, 0].min()) > 100, "validation rows scaled, not fitted"
    assert torch.equal(data.x_val[:, 1:], torch.zeros(len(data.x_val), 3)), \
        "an unseen category is all zeros"
    # Serving applies the same transform to raw rows.
    raw = frame.loc[split.val].drop(columns=["label"])
    assert torch.equal(data.preprocessing.transform(raw), data.x_val)
    # And it travels as JSON.
    again = Preprocessing.model_validate(data.preprocessing.model_dump())
    assert again == data.preprocessing and again.class_names == ["big", "small"]


def test_a_missing_column_or_an_unknown_character_is_named() -> None:
    inputs = TableInputs.fit(_table().drop(columns=["label"]))
    with pytest.raises(DataError, match=r"lacks column\(s\) 'colour'; the model takes size, "
                       r"colour"):
        inputs.transform(pd.DataFrame({"size": [1.0]}))
    text = TextInputs(vocab=["a", "b"], window=4)
    assert text.transform(pd.DataFrame({"text": ["abba", "ab"]})).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(DataError, match=r"characters \['z'\] are not in the model's vocab"):
        text.transform(pd.DataFrame({"text": ["abz"]}))


def test_images_serve_from_bytes_or_paths_as_they_trained(tmp_path: Path) -> None:
    root = write_images(tmp_path / "shapes", per_class=4, classes=2)
    spec = parse_spec({"model": {"family": "cnn"},
                       "data": {"dataset": "images", "path": str(root), "image_size": 16}})
    data = load_dataset(spec.data, seed=0, layout="image")
    assert data.preprocessing is not None
    files = sorted(root.rglob("*.png"))
    by_path = data.preprocessing.transform(pd.DataFrame({"image": [str(f) for f in files]}))
    by_bytes = data.preprocessing.transform(
        pd.DataFrame({"image": [f.read_bytes() for f in files]}))
    assert torch.equal(by_path, by_bytes) and by_path.shape == (8, 3, 16, 16)
    every = torch.cat([data.x_train, data.x_val])
    assert all(any(torch.equal(row, seen) for seen in every) for row in by_path)


def test_the_test_split_is_carved_first_and_never_reaches_a_trial() -> None:
    spec = parse_spec({"model": {"family": "mlp"}},
                      ["data.test_fraction=0.2", "data.val_fraction=0.2"])
    held = load_dataset(spec.data, seed=spec.seed, layout="vector")
    assert held.x_test is not None and held.y_test is not None
    assert len(held.x_test) == 360 and len(held.x_val) == 360 and len(held.x_train) == 1077
    assert sorted(held.y_test.unique().tolist()) == list(range(10)), "stratified"
    trial = trial_data(spec)
    assert trial.x_test is None and trial.y_test is None, "trials get no test split"
    with pytest.raises(ValueError, match="a trial's context holds no test split"):
        TrialContext(spec, "", dataset=held)
    assert torch.equal(trial.x_train, held.x_train) and torch.equal(trial.x_val, held.x_val)
    no_test = load_dataset(parse_spec({"model": {"family": "mlp"}}).data, seed=0,
                           layout="vector")
    assert no_test.x_test is None and len(no_test.x_val) == 360


def test_series_and_text_put_the_test_split_last_in_time(tmp_path: Path) -> None:
    series = parse_spec({"model": {"family": "rnn"}, "data": {"dataset": "series"}},
                        ["data.test_fraction=0.1"])
    data = load_dataset(series.data, seed=0, layout="sequence")
    assert data.x_test is not None and len(data.x_test) == 300, "the last 10% of 3,000 steps"
    pre = data.preprocessing
    assert pre is not None and pre.target_std != 1.0
    # Raw input: the window's last values, unscaled, in columns t0...
    raw = data.x_val[:1].reshape(1, -1).numpy() * pre.target_std + pre.target_mean
    window = pd.DataFrame(raw, columns=[name for name, _ in pre.inputs.column_types()])
    assert torch.allclose(pre.transform(window), data.x_val[:1], atol=1e-5)
    (tmp_path / "t.txt").write_text("abcd" * 400)
    text = parse_spec({"model": {"family": "rnn"},
                       "data": {"dataset": "text", "path": str(tmp_path / "t.txt")}},
                      ["data.test_fraction=0.25"])
    tokens = load_dataset(text.data, seed=0, layout="tokens")
    assert tokens.x_test is not None and len(tokens.x_test) == 12, "48 chunks / 4, the last"
    assert len(tokens.x_val) == 10 and len(tokens.x_train) == 26


def test_fractions_that_leave_no_training_data_are_refused() -> None:
    from trialforge.errors import SpecError

    with pytest.raises(SpecError, match=r"val_fraction \+ test_fraction = 1 leaves nothing"):
        parse_spec({}, ["data.val_fraction=0.5", "data.test_fraction=0.5"])
    with pytest.raises(SpecError, match="stream: test_fraction"):
        parse_spec({"data": {"dataset": "images", "path": "/x", "stream": True}},
                   ["data.test_fraction=0.1"])



def test_answers_read_as_labels_probabilities_or_predictions() -> None:
    """What a served model returns, for each kind of task (pure: tensors in, a frame out)."""
    inputs = TableInputs.fit(_table().drop(columns=["label"]))
    classes = Preprocessing(inputs=inputs, task="classification", class_names=["big", "small"])
    answers = classes.answers(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    assert answers["label"].tolist() == ["big", "small"]
    assert answers["probability_big"].iloc[0] == pytest.approx(torch.tensor([2.0, 0.0])
                                                                 .softmax(0)[0].item())
    assert classes.output_schema() == [("label", "string"), ("probability_big", "double"),
                                       ("probability_small", "double")]
    forecast = Preprocessing(inputs=inputs, task="regression", target_mean=10.0, target_std=2.0)
    assert forecast.answers(torch.tensor([[0.5], [-1.0]]))["prediction"].tolist() == [11.0, 8.0]
    text = Preprocessing(inputs=TextInputs(vocab=["a", "b"], window=4), task="language_model",
                         class_names=["a", "b"])
    logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0]]])  # (1 row, 2 steps, 2 characters)
    assert text.answers(logits)["label"].tolist() == ["b"], "the next after the last step"
