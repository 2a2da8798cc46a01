"""A config's `_target_` nodes checked against their signatures, one line per fault."""

from typing import Literal

import pytest
import torch

from rnnlab.utils.arguments import check_arguments, describe, fits
from rnnlab.utils.errors import ConfigError


def takes_anything(size: int, **rest: object) -> None:
    """A target with **kwargs: any further key is its own business."""


@pytest.mark.parametrize(
    ("value", "hint", "ok"),
    [
        (3, int, True),
        (True, int, False),  # YAML's true is not a count
        (3, float, True),
        ("3", float, False),
        (None, int | None, True),
        ("fast", float | torch.Tensor, False),
        ("cos", Literal["cos", "linear"], True),
        ("cosine", Literal["cos", "linear"], False),
        (32, Literal[64, 32, 16] | Literal["32-true"], True),
        ("32", Literal[64, 32, 16], False),
        ([1, 2], list[int], True),
        ("logs", str | torch.Tensor, True),
        ("anything", torch.nn.Module | list[torch.nn.Module] | None, False),
    ],
)
def test_a_plain_value_fits_only_the_hints_that_allow_it(value, hint, ok) -> None:
    assert fits(value, hint) is ok


def test_what_a_hint_allows_reads_as_words() -> None:
    assert describe(int | None) == "int or None"
    assert describe(Literal["cos", "linear"]) == "'cos' or 'linear'"


def test_nested_nodes_are_checked_with_their_place_in_the_config() -> None:
    node = {"optimizer": {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": "fast"}}
    with pytest.raises(ConfigError, match=r"^model\.optimizer\.lr='fast': float or Tensor"):
        check_arguments(node, "model")


def test_a_target_with_kwargs_takes_unknown_keys_but_not_wrong_types() -> None:
    target = f"{__name__}.takes_anything"
    check_arguments({"_target_": target, "size": 3, "colour": "red"}, "x")
    with pytest.raises(ConfigError, match=r"^x\.size='big': int expected$"):
        check_arguments({"_target_": target, "size": "big"}, "x")
