import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from rnnlab.data.tokenizer import build_tokenizer
from rnnlab.meta import DataMeta
from rnnlab.run.predict import Predictor, _decoded_lines, predict
from tests.conftest import make_reviews
from tests.models.conftest import make_model


def _predictor(label_names: tuple[str, ...] = ("neg", "pos")) -> Predictor:
    texts, _ = make_reviews(50, 0)
    tokenizer = build_tokenizer(texts, vocab_size=60)
    meta = DataMeta(tokenizer.get_vocab_size(), 0, tokenizer.to_str(), label_names)
    torch.manual_seed(0)
    model = make_model(["model.embedding_dim=8", "model.hidden_size=8"], meta).eval()
    return Predictor(model, max_len=50, truncation="head_tail")


PREDICTOR = _predictor()


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=4))
def test_any_unicode_text_gets_one_json_answer_per_text(texts) -> None:
    lines = [json.dumps(answer) for answer in PREDICTOR.predict_lines(texts, batch_size=3)]
    assert len(lines) == len(texts)
    for line in lines:
        answer = json.loads(line)
        assert answer["label"] in ("neg", "pos") and 0.0 <= answer["prob_pos"] <= 1.0


def test_megabyte_text_and_control_characters_get_answers() -> None:
    texts = ["great " * 200_000, "\x00\x07\x1b[31m", "   ", "", "😀 Отличный фильм 素晴らしい"]
    assert len(list(PREDICTOR.predict_lines(texts))) == len(texts)


def test_invalid_utf8_is_replaced_with_one_notice(capsys) -> None:
    lines = list(_decoded_lines([b"good \xff film\n", b"ok\r\n", b"\xc3\x28 bad\n"], "reviews.txt"))
    assert lines == ["good \ufffd film", "ok", "\ufffd( bad"]
    assert capsys.readouterr().err.count("notice: reviews.txt: invalid UTF-8") == 1


def test_a_file_of_many_lines_is_streamed_in_batches(tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "reviews.txt"
    path.write_text("a great film\n" * 100_000)
    seen = []
    original = Predictor.outputs

    def spy(self, texts):
        seen.append(len(texts))
        return original(self, texts)

    monkeypatch.setattr(Predictor, "outputs", spy)
    monkeypatch.setattr(
        Predictor, "from_checkpoint", classmethod(lambda cls, path, device: PREDICTOR)
    )
    predict(
        OmegaConf.create(
            {"ckpt_path": "x.ckpt", "text": None, "input_file": str(path), "batch_size": 4096}
        )
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 100_000 and max(seen) == 4096


def test_more_than_two_classes_answer_with_every_class_probability() -> None:
    predictor = _predictor(("world", "sports", "business", "science"))
    answers = list(predictor.predict_lines(["a great film", ""]))
    for answer in answers:
        assert answer["label"] in answer["probs"]
        assert list(answer["probs"]) == ["world", "sports", "business", "science"]
        assert sum(answer["probs"].values()) == pytest.approx(1.0, abs=1e-5)
        assert answer["label"] == max(answer["probs"], key=answer["probs"].get)


def test_binary_answers_name_the_positive_class_of_the_data() -> None:
    (answer,) = _predictor(("negative", "positive")).predict_lines(["a great film"])
    assert answer.keys() == {"label", "prob_positive"}
