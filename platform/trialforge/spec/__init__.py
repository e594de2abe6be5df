"""A sweep spec: pydantic models of every knob, YAML loading and `key=value` overrides.

The spec is the only input of a sweep. Every field has a default, so a spec can be a few
lines; anything unknown or out of range is a `SpecError` naming the field and the fix.
Search-space keys may be bare knob names (`lr`, `dropout`) or dotted paths (`train.lr`);
they are stored as dotted paths, the one name a knob has in Optuna, Tune and MLflow.
"""

from trialforge.spec.families import (
    Activation,
    CNNConfig,
    CustomModelConfig,
    GANConfig,
    MLPConfig,
    ModelConfig,
    RNNConfig,
    TransferConfig,
    WeightInit,
)
from trialforge.spec.loading import apply_overrides, format_errors, load_spec, parse_spec
from trialforge.spec.sections import (
    DataConfig,
    RegisterConfig,
    SchedulerConfig,
    SearchConfig,
    TrainConfig,
)
from trialforge.spec.space import (
    Choice,
    IntRange,
    LogUniform,
    ParamSpace,
    Uniform,
    candidate_values,
)
from trialforge.spec.sweep import SweepSpec

__all__ = [
    "Activation", "CNNConfig", "Choice", "CustomModelConfig", "DataConfig", "GANConfig",
    "IntRange", "LogUniform", "MLPConfig", "ModelConfig", "ParamSpace", "RNNConfig",
    "RegisterConfig", "SchedulerConfig", "SearchConfig", "SweepSpec", "TrainConfig",
    "TransferConfig", "Uniform", "WeightInit", "apply_overrides", "candidate_values",
    "format_errors", "load_spec", "parse_spec",
]
