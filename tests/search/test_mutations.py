"""pbt/pb2 (pure logic): which knobs mutate, perturbed values kept inside the space, and an
exploiting trial's optimizer taking its new knobs over the copied checkpoint's."""

from __future__ import annotations

import torch
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers.pb2 import PB2

from trialforge import parse_spec
from trialforge.search.population import LineagePB2, LineagePBT, _Within
from trialforge.search.schedulers import build_scheduler
from trialforge.train import hyperparameters

SPACE = ["search.space.lr.loguniform=[0.0001,0.1]", "search.space.dropout.uniform=[0.0,0.5]",
         "search.space.batch_size.choice=[32,64]", "search.space.batchnorm.choice=[true,false]"]


def test_pbt_mutates_the_knobs_that_keep_weights_and_pb2_the_float_ones() -> None:
    pbt = parse_spec({}, ["search.scheduler.type=pbt", *SPACE])
    assert set(pbt.search.mutations()) == {"train.lr", "model.dropout", "train.batch_size"}
    scheduler = build_scheduler(pbt, lambda *args: None)
    assert isinstance(scheduler, LineagePBT) and isinstance(scheduler, PopulationBasedTraining)
    pb2 = parse_spec({}, ["search.scheduler.type=pb2", *SPACE])
    assert set(pb2.search.mutations()) == {"train.lr", "model.dropout"}
    assert isinstance(build_scheduler(pb2), LineagePB2) and issubclass(LineagePB2, PB2)


def test_perturbed_values_stay_inside_their_space() -> None:
    spec = parse_spec({}, ["search.scheduler.type=pbt", *SPACE])
    within = _Within(spec.search.mutations())
    config = within({"train.lr": 0.5, "model.dropout": -0.1, "train.batch_size": 64,
                     "model.batchnorm": True})
    assert config == {"train.lr": 0.1, "model.dropout": 0.0, "train.batch_size": 64,
                      "model.batchnorm": True}


def test_an_exploit_takes_the_new_knobs_and_keeps_the_moments() -> None:
    donor = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1, momentum=0.9,
                            weight_decay=0.0)
    donor.param_groups[0]["params"][0].grad = torch.ones(2)
    donor.step()
    trained = hyperparameters.asked(donor)
    mine = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.02, momentum=0.5,
                           weight_decay=1e-4)
    wanted = hyperparameters.asked(mine)
    mine.load_state_dict(donor.state_dict())
    assert mine.param_groups[0]["lr"] == 0.1, "loading takes the donor's knobs"
    hyperparameters.adopt(mine, wanted, trained)
    group = mine.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.02, 0.5, 1e-4)
    assert mine.state_dict()["state"][0]["momentum_buffer"].tolist() == [1.0, 1.0]
    # A trial resumed from its own checkpoint keeps its (scheduled) learning rate.
    mine.param_groups[0]["lr"] = 0.005
    hyperparameters.adopt(mine, wanted, wanted)
    assert mine.param_groups[0]["lr"] == 0.005
