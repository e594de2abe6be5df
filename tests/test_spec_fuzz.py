"""Mutated copies of the shipped specs are a valid spec or the project's own error, never a
raw exception (property-based, pure logic: parsing only)."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import REPO
from trialforge.errors import TrialforgeError
from trialforge.search.space import searcher_space, spec_point
from trialforge.spec import parse_spec

SPECS = [yaml.safe_load(path.read_text()) for path in sorted((REPO / "jobs").glob("*.yaml"))]
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["cnn", "mlp", "asha", "max", "digits", "relu",
                                           "models:/x@y", "a:b", ""]),
    st.lists(st.integers(-3, 3) | st.text(max_size=4), max_size=3),
    st.dictionaries(st.sampled_from(["family", "choice", "uniform", "min", "x"]),
                    st.integers(-3, 3) | st.text(max_size=4), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from(SPECS))))  # a deep copy
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(spec)
        if not paths:
            break
        *parents, last = draw(st.sampled_from(paths))
        node = spec
        for part in parents:
            node = node[part]
        if draw(st.booleans()) and isinstance(node, dict):
            del node[last]
        else:
            node[last] = draw(JUNK)
    return spec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_a_mutated_spec_is_valid_or_one_clear_error(raw: dict[str, Any]) -> None:
    try:
        spec = parse_spec(raw)
    except TrialforgeError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), "one line"
        return
    # What the driver does with a valid spec before any trial: no raw exception either.
    again = parse_spec(yaml.safe_load(spec.to_yaml()))
    assert again == spec, "a spec survives its own YAML"
    searcher_space(spec.search.space)
    first = spec_point(spec)
    if first:
        spec.trial_params(first)
