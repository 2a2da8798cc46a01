"""A classifier started from a language model: the LM's embedding and encoder weights are
copied, everything above stays, and any mismatch (tokenizer, sizes, encoder, direction, not an
LM at all) is refused in one line. The LM checkpoints are written as train.py writes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from rnnlab.data.tokenizer import EOS, build_tokenizer, load_tokenizer
from rnnlab.meta import DataMeta
from rnnlab.models import RNNClassifier
from rnnlab.models.pretrained import read_language_model, start_from_language_model
from rnnlab.run.generate import continuations, generate
from rnnlab.run.predict import Predictor
from rnnlab.run.train import train
from rnnlab.utils import ConfigError
from tests.conftest import TINY, compose_cfg, make_reviews
from tests.models.conftest import ENCODERS, classifier, fast_model


def _tokenizer_json(n: int = 50, seed: int = 0) -> str:
    texts, _ = make_reviews(n, seed)
    return build_tokenizer(texts, 100, extra=(EOS,)).to_str()


def _meta(tokenizer_json: str, label_names: tuple[str, ...] = ()) -> DataMeta:
    vocab_size = load_tokenizer(tokenizer_json).get_vocab_size()
    return DataMeta(vocab_size, 0, tokenizer_json, label_names)


def _lm_checkpoint(path: Path, tokenizer_json: str, *overrides: str) -> Path:
    """What a run of experiment=imdb_lm saves, less the trainer's state (model=lstm unless an
    override says otherwise)."""
    lm = fast_model(
        ["experiment=imdb_lm", "model=lstm", "model/decoder=tied", "model.dropout=0.0", *overrides],
        _meta(tokenizer_json),
        seed=1,
    )
    with torch.no_grad():
        for param in lm.parameters():  # trained: every weight has left its init, zeros too
            param.add_(0.01)
        lm.embedding.weight[0] = 1.0  # a tied LM trains the pad row too
    checkpoint = {"state_dict": lm.state_dict(), "epoch": 0, "global_step": 1}
    lm.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


SMALL = ["model.embedding_dim=8", "model.hidden_size=8"]


def _classifier(tokenizer_json: str, encoder: str = "lstm", *overrides: str) -> RNNClassifier:
    return classifier(
        encoder, "max", *SMALL, *overrides, meta=_meta(tokenizer_json, ("neg", "pos")), seed=2
    )


@pytest.mark.parametrize("encoder", ENCODERS)
def test_loading_copies_embedding_and_recurrent_layers_only(encoder: str, tmp_path: Path) -> None:
    tokenizer_json = _tokenizer_json()
    path = _lm_checkpoint(
        tmp_path / "lm.ckpt", tokenizer_json, f"model={encoder}", *SMALL, "model.num_layers=2"
    )
    lm = torch.load(path, weights_only=True)["state_dict"]
    model = _classifier(tokenizer_json, encoder, "model.num_layers=2")
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    start_from_language_model(model, str(path))
    copied = [k for k in model.state_dict() if k.startswith(("embedding.", "encoder."))]
    assert copied == [k for k in lm if k.startswith(("embedding.", "encoder."))]
    assert all(not torch.equal(fresh[k], lm[k]) for k in copied)  # so copying shows
    for key, value in model.state_dict().items():
        if key == "embedding.weight":
            torch.testing.assert_close(value[1:], lm[key][1:])
            assert not value[0].any()  # the pad row stays zero (a tied LM moves it)
        elif key in copied:
            torch.testing.assert_close(value, lm[key], msg=key)
        else:  # the read-out and head are the classifier's own, as freshly initialised
            torch.testing.assert_close(value, fresh[key], msg=key)


def test_a_mismatched_tokenizer_is_refused(tmp_path: Path) -> None:
    path = _lm_checkpoint(tmp_path / "lm.ckpt", _tokenizer_json(seed=0), *SMALL)
    other = build_tokenizer(["an entirely different corpus of words"], 100, extra=(EOS,)).to_str()
    with pytest.raises(
        ConfigError, match=r"^model\.pretrained='.*': the data's tokenizer is not the LM's"
    ):
        start_from_language_model(_classifier(other), str(path))


@pytest.mark.parametrize(
    ("encoder", "override", "message"),
    [
        (
            "lstm",
            "model.hidden_size=16",
            r"the LM has model\.hidden_size=8; the config asks for model\.hidden_size=16$",
        ),
        (
            "lstm",
            "model.num_layers=2",
            r"the LM has model\.num_layers=1; the config asks for model\.num_layers=2$",
        ),
        ("gru", "model.dropout=0.0", r"the LM has model\.encoder=\{.*LSTMEncoder.*GRUEncoder"),
        ("lstm", "model.encoder.forget_bias=1.0", r"the LM has model\.encoder=\{.*forget_bias"),
        ("lstm", "model.bidirectional=true", r"use model\.bidirectional=false$"),
    ],
)
def test_other_shapes_or_encoders_are_refused_in_one_line(
    encoder: str, override: str, message: str, tmp_path: Path
) -> None:
    tokenizer_json = _tokenizer_json()
    path = _lm_checkpoint(tmp_path / "lm.ckpt", tokenizer_json, *SMALL)
    model = _classifier(tokenizer_json, encoder, override)
    with pytest.raises(ConfigError, match=message) as err:
        start_from_language_model(model, str(path))
    assert str(err.value).startswith("model.pretrained=") and "\n" not in str(err.value)


def test_a_classifier_checkpoint_is_not_a_language_model(tmp_path: Path) -> None:
    tokenizer_json = _tokenizer_json()
    model = _classifier(tokenizer_json)
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "classifier.ckpt")
    torch.save({"state_dict": model.state_dict()}, tmp_path / "old.ckpt")
    for name in ("classifier.ckpt", "old.ckpt"):
        with pytest.raises(ConfigError, match=r"^model\.pretrained='.*': not a language-model"):
            start_from_language_model(_classifier(tokenizer_json), str(tmp_path / name))


# -- through train.py and generate.py -----------------------------------------------------------


@pytest.fixture(scope="module")
def lm_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LM with the tiny runs' sizes and a tokenizer of the synthetic reviews' words."""
    path = tmp_path_factory.mktemp("lm") / "lm.ckpt"
    tokenizer_json = _tokenizer_json(n=240)
    return _lm_checkpoint(path, tokenizer_json, "model.embedding_dim=16", "model.hidden_size=16")


def test_fine_tuning_reads_reviews_with_the_lms_tokenizer(
    lm_ckpt: Path, hub_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    overrides = [
        *TINY,
        "model=lstm",
        f"model.pretrained={lm_ckpt}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
    ]
    metrics = train(compose_cfg("train", overrides, tmp_path, cache_dir, hub_dir))
    assert "test/acc" in metrics
    best = torch.load(metrics["best_ckpt_path"], weights_only=True)
    lm = read_language_model(str(lm_ckpt))
    assert best["meta"]["tokenizer_json"] == lm["meta"]["tokenizer_json"]
    assert "pretrained" not in best["model_config"]  # the classifier needs it no more
    # predicting needs the classifier checkpoint alone, not the LM it started from
    predictor = Predictor.from_checkpoint(metrics["best_ckpt_path"])
    assert len(list(predictor.predict_lines(["A superb film."]))) == 1


def test_gradual_unfreezing_keeps_the_lms_embedding_until_its_stage(
    lm_ckpt: Path, hub_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    overrides = [
        "experiment=imdb_finetune",
        *TINY,
        f"model.pretrained={lm_ckpt}",
        "model.gradual_unfreezing=true",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
    ]
    metrics = train(compose_cfg("train", overrides, tmp_path, cache_dir, hub_dir))
    tuned = torch.load(Path(metrics["output_dir"]) / "checkpoints" / "last.ckpt", weights_only=True)
    lm = torch.load(lm_ckpt, weights_only=True)["state_dict"]
    assert tuned["model_config"]["readout"]["_target_"].endswith("ConcatReadout")
    # epoch 0 trains the read-out and head, epoch 1 the LSTM too; the embedding waits for epoch 2
    torch.testing.assert_close(
        tuned["state_dict"]["embedding.weight"][1:], lm["embedding.weight"][1:]
    )
    key = "encoder.forward_layers.0.weight_hh_l0"
    assert not torch.equal(tuned["state_dict"][key], lm[key])
    lrs = [group["lr"] for group in tuned["optimizer_states"][0]["param_groups"]]
    assert len(lrs) == 3 and lrs[0] < lrs[1] < lrs[2]


def test_fine_tuning_from_a_different_encoder_is_one_line(
    lm_ckpt: Path, hub_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    overrides = [*TINY, "model=gru", f"model.pretrained={lm_ckpt}", "debug=fdr"]
    with pytest.raises(SystemExit) as exit_info:
        train(compose_cfg("train", overrides, tmp_path, cache_dir, hub_dir))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.match(
        rf"error: model\.pretrained='{re.escape(str(lm_ckpt))}': the LM has model\.encoder="
        r"\{.*LSTMEncoder.*\}; the config asks for model\.encoder=\{.*GRUEncoder.*\}$",
        err.strip(),
    )


def test_generate_samples_a_continuation_of_the_prompt(
    lm_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    texts = continuations(str(lm_ckpt), "The film", max_tokens=8, num_samples=2, seed=3)
    assert len(texts) == 2 and all(t.startswith("the film ") for t in texts)
    assert texts == continuations(str(lm_ckpt), "The film", max_tokens=8, num_samples=2, seed=3)
    assert all("<pad>" not in t for t in texts)
    overrides = [f"ckpt_path={lm_ckpt}", "prompt='The plot, and'", "num_samples=3"]
    generate(compose_cfg("generate", overrides, tmp_path, tmp_path))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("the plot <unk> and") for line in lines)
