import pytest
import torch

from fnnkit.errors import ConfigError
from fnnkit.network import FeedForward, build
from fnnkit.safetensors_vet import expected_tensors
from fnnkit.variants import VARIANTS, VariantSpec, get_spec, resolve_variants

# The tutorial's networks: 784 -> 100 (x1, x2, x3) -> 10.
EXPECTED_PARAMETERS = {"A": 79_510, "B": 79_510, "C": 79_510, "D": 89_610, "E": 99_710}
EXPECTED_SHAPE = {"A": ("sigmoid", 1), "B": ("tanh", 1), "C": ("relu", 1), "D": ("relu", 2), "E": ("relu", 3)}


def test_every_variant_has_expectations():
    assert set(VARIANTS) == set(EXPECTED_PARAMETERS) == set(EXPECTED_SHAPE)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_parameter_count_matches_tutorial(name):
    model = build(name)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMETERS[name]
    assert VARIANTS[name].num_parameters == EXPECTED_PARAMETERS[name]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_structure_and_forward_shape(name):
    spec = VARIANTS[name]
    assert (spec.activation, spec.hidden_layers) == EXPECTED_SHAPE[name]
    model = build(name)
    activations = [m for m in model.layers if not isinstance(m, torch.nn.Linear)]
    assert len(activations) == spec.hidden_layers
    assert all(type(m).__name__.lower() == spec.activation for m in activations)
    logits = model(torch.rand(7, 784))
    assert logits.shape == (7, 10) and logits.dtype == torch.float32


def test_flops_count_two_per_multiply_add():
    assert VARIANTS["A"].flops_per_sample == 2 * (784 * 100 + 100 * 10)
    assert VARIANTS["E"].flops_per_sample == 2 * (784 * 100 + 2 * 100 * 100 + 100 * 10)


def test_new_variant_is_one_line():
    wide = FeedForward(VariantSpec("W", "tanh", 2, hidden_dim=32))
    assert wide(torch.zeros(2, 784)).shape == (2, 10)


@pytest.mark.parametrize(
    "names, expected",
    [("all", list("ABCDE")), ("c", ["C"]), ("E,a", ["A", "E"]), (["B", "B"], ["B"]), ("A,all", list("ABCDE"))],
)
def test_resolve_variants(names, expected):
    assert [s.name for s in resolve_variants(names)] == expected


@pytest.mark.parametrize("bad", ["Z", "A,Q", ""])
def test_unknown_variant_lists_valid_choices(bad):
    with pytest.raises(ConfigError, match="valid choices: A, B, C, D, E"):
        resolve_variants(bad) if "," in bad or not bad else get_spec(bad)


def test_spec_validation():
    with pytest.raises(ConfigError, match="activation"):
        VariantSpec("X", "gelu?", 1)
    with pytest.raises(ValueError):
        VariantSpec("X", "relu", 0)


@pytest.mark.parametrize("spec", [*VARIANTS.values(), VariantSpec("W", "tanh", 2, hidden_dim=32)], ids=lambda s: s.name)
def test_torch_free_tensor_names_are_the_modules_state_dict(spec):
    """safetensors vetting and the numpy forward pass find the weights by the spec's names, without torch."""
    state = FeedForward(spec).state_dict()
    assert expected_tensors(spec) == {name: ("F32", list(t.shape)) for name, t in state.items()}
    assert [f"{n}.weight" for n in spec.linear_names] == [n for n in state if n.endswith(".weight")]
