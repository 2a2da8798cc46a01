from pathlib import Path

import pytest
import torch

from rnnlab.data.tokenizer import EOS, build_tokenizer, load_tokenizer
from rnnlab.models import RNNClassifier, RNNLanguageModel
from rnnlab.tasks.generate import continuations, generate
from rnnlab.tasks.predict import Predictor
from rnnlab.tasks.train import train
from rnnlab.utils import ConfigError
from tests.conftest import TINY, compose_cfg, make_reviews
from tests.lm_helpers import LM_TINY, write_lm_layout

SIZES = {"embedding_dim": 8, "hidden_size": 8}


def _tokenizer_json(seed: int = 0) -> str:
    texts, _ = make_reviews(50, seed)
    return build_tokenizer(texts, 100, extra=(EOS,)).to_str()


def _vocab_size(tokenizer_json: str) -> int:
    return load_tokenizer(tokenizer_json).get_vocab_size()


def _lm_checkpoint(path: Path, tokenizer_json: str, **kwargs) -> Path:
    """What a run of experiment=imdb_lm saves, less the trainer's state."""
    torch.manual_seed(1)
    lm = RNNLanguageModel(
        vocab_size=_vocab_size(tokenizer_json),
        pad_id=0,
        decoder="tied",
        tokenizer_json=tokenizer_json,
        **{**SIZES, **kwargs},
    )
    checkpoint = {
        "state_dict": lm.state_dict(),
        "hyper_parameters": dict(lm.hparams),
        "tokenizer_json": tokenizer_json,
    }
    torch.save(checkpoint, path)
    return path


def _classifier(tokenizer_json: str, pretrained: Path | None = None, **kwargs) -> RNNClassifier:
    torch.manual_seed(2)
    return RNNClassifier(
        vocab_size=_vocab_size(tokenizer_json),
        pad_id=0,
        tokenizer_json=tokenizer_json,
        pretrained=str(pretrained) if pretrained else None,
        **{**SIZES, **kwargs},
    )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_loading_copies_embedding_and_recurrent_layers_only(cell, tmp_path) -> None:
    tokenizer_json = _tokenizer_json()
    path = _lm_checkpoint(tmp_path / "lm.ckpt", tokenizer_json, cell=cell, num_layers=2)
    lm = torch.load(path, weights_only=True)["state_dict"]
    fresh = _classifier(tokenizer_json, cell=cell, num_layers=2).state_dict()
    model = _classifier(tokenizer_json, path, cell=cell, num_layers=2)
    copied = [k for k in model.state_dict() if k.startswith(("embedding.", "encoder."))]
    assert len(copied) == 1 + 2 * 4  # embedding + per layer weight_ih, weight_hh, bias_ih, bias_hh
    for key, value in model.state_dict().items():
        if key == "embedding.weight":
            torch.testing.assert_close(value[1:], lm[key][1:])
            assert not value[0].any()  # the pad row stays zero (a tied LM moves it)
        elif key in copied:
            torch.testing.assert_close(value, lm[key])
        else:  # the head is the classifier's own, as freshly initialised
            torch.testing.assert_close(value, fresh[key], msg=key)


def test_a_mismatched_tokenizer_is_refused(tmp_path) -> None:
    path = _lm_checkpoint(tmp_path / "lm.ckpt", _tokenizer_json(seed=0))
    other = build_tokenizer(["an entirely different corpus of words"], 100, extra=(EOS,)).to_str()
    with pytest.raises(
        ConfigError, match=r"^model\.pretrained='.*': the data's tokenizer is not the LM's"
    ):
        _classifier(other, path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"hidden_size": 16},
            r"the LM has model\.hidden_size=8; the config asks for model\.hidden_size=16",
        ),
        ({"cell": "gru"}, r"the LM has model\.cell=lstm; the config asks for model\.cell=gru"),
        ({"bidirectional": True}, r"model\.bidirectional=false"),
    ],
)
def test_other_shapes_are_refused_in_one_line(kwargs, message, tmp_path) -> None:
    tokenizer_json = _tokenizer_json()
    path = _lm_checkpoint(tmp_path / "lm.ckpt", tokenizer_json)
    with pytest.raises(ConfigError, match=message) as err:
        _classifier(tokenizer_json, path, **kwargs)
    assert "\n" not in str(err.value)


def test_a_classifier_checkpoint_is_not_a_language_model(tmp_path) -> None:
    tokenizer_json = _tokenizer_json()
    classifier = _classifier(tokenizer_json)
    path = tmp_path / "classifier.ckpt"
    checkpoint = {
        "state_dict": classifier.state_dict(),
        "hyper_parameters": dict(classifier.hparams),
    }
    torch.save({**checkpoint, "tokenizer_json": tokenizer_json}, path)
    with pytest.raises(ConfigError, match=r"not a language-model checkpoint"):
        _classifier(tokenizer_json, path)


@pytest.fixture(scope="module")
def lm_run(cache_dir, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny `train.py experiment=imdb_lm` run: (its best checkpoint, the data folder)."""
    data = write_lm_layout(tmp_path_factory.mktemp("lm_imdb"))
    out = tmp_path_factory.mktemp("lm_run")
    overrides = [*LM_TINY, "model=lstm", "trainer.limit_train_batches=30", "trainer.max_epochs=2"]
    metrics = train(compose_cfg("train", overrides, out, cache_dir, data))
    assert metrics["val/ppl_best"] > 1 and "test/acc" not in metrics
    return Path(metrics["best_ckpt_path"]), data


def test_fine_tuning_reads_reviews_with_the_lms_tokenizer(lm_run, cache_dir, tmp_path) -> None:
    lm_ckpt, data = lm_run
    overrides = [
        *TINY,
        "model=lstm",
        f"model.pretrained={lm_ckpt}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
    ]
    metrics = train(compose_cfg("train", overrides, tmp_path, cache_dir, data))
    assert "test/acc" in metrics
    best = torch.load(metrics["best_ckpt_path"], weights_only=True)
    assert best["tokenizer_json"] == torch.load(lm_ckpt, weights_only=True)["tokenizer_json"]
    assert best["hyper_parameters"]["pretrained"] == str(lm_ckpt)
    # predicting needs the classifier checkpoint alone, not the LM it started from
    predictor = Predictor.from_checkpoint(metrics["best_ckpt_path"])
    assert len(list(predictor.predict_lines(["A superb film."]))) == 1


def test_gradual_unfreezing_keeps_the_lms_embedding_until_its_stage(
    lm_run, cache_dir, tmp_path
) -> None:
    lm_ckpt, data = lm_run
    overrides = [
        "experiment=imdb_finetune",
        *TINY,
        f"model.pretrained={lm_ckpt}",
        "model.gradual_unfreezing=true",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
    ]
    metrics = train(compose_cfg("train", overrides, tmp_path, cache_dir, data))
    tuned = torch.load(Path(metrics["output_dir"]) / "checkpoints" / "last.ckpt", weights_only=True)
    lm = torch.load(lm_ckpt, weights_only=True)["state_dict"]
    assert tuned["hyper_parameters"]["pooling"] == "concat"
    # epoch 0 trains the head, epoch 1 the LSTM too; the embedding waits for epoch 2
    torch.testing.assert_close(
        tuned["state_dict"]["embedding.weight"][1:], lm["embedding.weight"][1:]
    )
    assert not torch.equal(
        tuned["state_dict"]["encoder.rnn.weight_hh_l0"], lm["encoder.rnn.weight_hh_l0"]
    )
    lrs = [group["lr"] for group in tuned["optimizer_states"][0]["param_groups"]]
    assert len(lrs) == 3 and lrs[0] < lrs[1] < lrs[2]


def test_fine_tuning_from_a_different_architecture_is_one_line(
    lm_run, cache_dir, tmp_path, capsys
) -> None:
    lm_ckpt, data = lm_run
    overrides = [*TINY, "model=gru", f"model.pretrained={lm_ckpt}", "debug=fdr"]
    with pytest.raises(SystemExit) as exit_info:
        train(compose_cfg("train", overrides, tmp_path, cache_dir, data))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"error: model.pretrained='{lm_ckpt}': the LM has model.cell=lstm; "
        "the config asks for model.cell=gru\n"
    )


def test_generate_samples_a_continuation_of_the_prompt(lm_run, tmp_path, capsys) -> None:
    lm_ckpt, _ = lm_run
    texts = continuations(str(lm_ckpt), "The film", max_tokens=8, num_samples=2, seed=3)
    assert len(texts) == 2 and all(t.startswith("the film ") for t in texts)
    assert texts == continuations(str(lm_ckpt), "The film", max_tokens=8, num_samples=2, seed=3)
    assert all("<pad>" not in t for t in texts)
    overrides = [f"ckpt_path={lm_ckpt}", "prompt='The plot, and'", "num_samples=3"]
    generate(compose_cfg("generate", overrides, tmp_path, tmp_path))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("the plot <unk> and") for line in lines)
