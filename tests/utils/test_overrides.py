from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from rnnlab.utils.overrides import quote_free_text_args, quote_override_value

PARSER = OverridesParser.create()


def _round_trip(text: str) -> str:
    override = PARSER.parse_override("text=" + quote_override_value(text))
    return OmegaConf.create({"text": override.value()}).text


def test_quoting_keeps_commas_quotes_interpolations_and_backslashes() -> None:
    for text in [
        "A wonderful, moving film.",
        "it's ${x} [a,b]",
        "a \\${y} b",
        "end\\",
        "x\\\\'",
        "\\\n",  # a backslash before a final newline
        "",
    ]:
        assert _round_trip(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_unicode_text_survives_hydra_and_omegaconf(text: str) -> None:
    assert _round_trip(text) == text


def test_only_the_named_keys_are_rewritten() -> None:
    argv = quote_free_text_args(["ckpt_path=a.ckpt", "text=x, y"], keys=("text",))
    assert argv == ["ckpt_path=a.ckpt", "text='x, y'"]
