"""The task components: each sizes the head, scores its own labels and names its objective; the
per-step task counts only the recall steps; a tiny LSTM learns the adding task."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.meta import DataMeta
from rnnlab.models import RNNClassifier
from rnnlab.models.build import model_objective
from rnnlab.models.components import Classification, Recall, Regression, Task
from rnnlab.models.components.task import IGNORE
from rnnlab.utils.errors import ConfigError
from tests.models.conftest import BINARY, STEP_READOUTS, TASKS, fast_model

ADDING = DataMeta(vocab_size=0, pad_id=0, tokenizer_json="", input_size=2)
COPY = DataMeta(
    vocab_size=11, pad_id=0, tokenizer_json="", label_names=tuple(f"s{i}" for i in range(8))
)
# the data each task is built for, and the (inputs, labels) of a batch of it
META = {Classification: BINARY, Regression: ADDING, Recall: COPY}
SMALL = ["model.hidden_size=8", "model.embedding_dim=4", "model.dropout=0.0"]


def _preset(task: type[Task]) -> list[str]:
    """The overrides that build the model for `task` as its data preset does."""
    if task is Regression:
        return ["experiment=adding"]
    if task is Recall:
        return ["experiment=copy"]
    return []


def _batch(task: type[Task], size: int = 4, steps: int = 7) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(0)
    lengths = torch.full((size,), steps)
    if task is Regression:
        inputs = torch.rand(size, steps, 2, generator=gen)
        return {"inputs": inputs, "lengths": lengths, "labels": torch.rand(size, generator=gen)}
    ids = torch.randint(1, 11, (size, steps), generator=gen)
    if task is Recall:
        labels = torch.full((size, steps), IGNORE)
        labels[:, -3:] = torch.randint(0, 8, (size, 3), generator=gen)
        return {"input_ids": ids, "lengths": lengths, "labels": labels}
    return {"input_ids": ids, "lengths": lengths, "labels": torch.arange(size) % 2}


def test_every_task_has_its_data_and_preset() -> None:
    assert set(META) == set(TASKS)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.__name__)
def test_each_task_builds_from_its_preset_and_scores_a_batch(task: type[Task]) -> None:
    model = fast_model([*_preset(task), *SMALL], META[task])
    assert isinstance(model, RNNClassifier) and isinstance(model.task, task)
    assert model.objective == task.objective and model.objective[1] in ("min", "max")
    assert model_objective(model.config) == model.objective  # read without building
    assert model.head.out_features == model.task.output_size
    batch = _batch(task)
    outputs = model(model.inputs(batch), batch["lengths"])
    assert model.task.predictions(outputs).shape == batch["labels"].shape
    loss = model.loss(outputs, batch["labels"])
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    model.task.update(model.val_metrics, outputs.detach(), batch["labels"])
    values = model.task.compute(model.val_metrics)
    assert model.objective[0] in values


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.__name__)
def test_each_task_describes_one_json_answer_per_sequence(task: type[Task]) -> None:
    model = fast_model([*_preset(task), *SMALL], META[task])
    batch = _batch(task)
    outputs = model(model.inputs(batch), batch["lengths"]).detach()
    answers = model.task.describe(outputs, META[task].label_names)
    assert len(answers) == 4
    assert json.loads(json.dumps(answers)) == answers  # plain JSON
    predictions = model.task.predictions(outputs)
    for answer, predicted in zip(answers, predictions):
        shown = next(iter(answer.values()))  # the label(s) or the value comes first
        if isinstance(shown, list):
            assert shown == [META[task].label_names[int(i)] for i in predicted]
        elif isinstance(shown, str):
            assert shown == META[task].label_names[int(predicted)]
        else:
            assert shown == pytest.approx(float(predicted), abs=1e-5)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.__name__)
def test_per_row_losses_average_to_the_batch_loss(task: type[Task]) -> None:
    model = fast_model([*_preset(task), *SMALL], META[task])
    batch = _batch(task)
    outputs = model(model.inputs(batch), batch["lengths"])
    per_row = model.loss(outputs, batch["labels"], reduction="none")
    assert per_row.shape == (4,)
    torch.testing.assert_close(per_row.mean(), model.loss(outputs, batch["labels"]))


def test_the_recall_loss_and_accuracy_count_only_the_recall_steps() -> None:
    task = Recall(COPY)
    labels = _batch(Recall)["labels"]
    logits = torch.randn(4, 7, 8)
    changed = logits.clone()
    changed[:, :-3] = torch.randn(4, 4, 8) * 100  # anything at the steps not scored
    torch.testing.assert_close(task.loss(logits, labels), task.loss(changed, labels))
    right = torch.zeros(4, 7, 8).scatter_(2, labels.clamp(min=0).unsqueeze(-1), 10.0)
    right[:, :-3] = 0
    right[:, :-3, 0] = 10.0  # wrong wherever it does not count
    assert task.loss(right, labels) < 1e-3
    assert task.train_metrics(right, labels)["recall_acc"] == 1.0
    task.update(task.val_metrics, right, labels)
    assert task.compute(task.val_metrics)["val/recall_acc"] == 1.0
    guessing = task.loss(torch.zeros(4, 7, 8), labels)
    torch.testing.assert_close(guessing, torch.tensor(8.0).log())


def test_regression_reports_solved_below_its_threshold() -> None:
    task = Regression(ADDING, solved_below=0.01)
    task.update(task.test_metrics, torch.tensor([1.0, 0.5]), torch.tensor([1.05, 0.5]))
    values = {k: float(v) for k, v in task.compute(task.test_metrics).items()}
    assert values == {"test/mse": pytest.approx(0.00125, rel=1e-5), "test/solved": 1.0}
    task.test_metrics.reset()
    task.update(task.test_metrics, torch.tensor([1.0]), torch.tensor([1.5]))
    assert task.compute(task.test_metrics)["test/solved"] == 0.0
    without = Regression(ADDING)  # no threshold: no solved metric
    without.update(without.val_metrics, torch.tensor([1.0]), torch.tensor([1.0]))
    assert without.compute(without.val_metrics).keys() == {"val/mse"}


def test_recall_reports_solved_above_its_threshold() -> None:
    task = Recall(COPY, solved_above=0.75)
    labels = torch.tensor([[IGNORE, 1, 2, 3, 0]])
    logits = F.one_hot(torch.tensor([[0, 1, 2, 3, 1]]), 8).float()  # 3 of 4 recalled
    task.update(task.test_metrics, logits, labels)
    assert task.compute(task.test_metrics) == {"test/recall_acc": 0.75, "test/solved": 0.0}
    task = Recall(COPY, solved_above=0.7)
    task.update(task.test_metrics, logits, labels)
    assert task.compute(task.test_metrics)["test/solved"] == 1.0


@pytest.mark.parametrize(
    ("overrides", "meta", "message"),
    [
        (
            ["experiment=copy", "model.readout._target_=rnnlab.models.components.MaxReadout"],
            COPY,
            "model.readout._target_='MaxReadout': StepReadout for the per-step task Recall",
        ),
        (["model/readout=step"], BINARY, "model.readout._target_='StepReadout': a read-out with"),
        (
            ["experiment=copy", "model.tbptt_steps=3"],
            COPY,
            "model.tbptt_steps=3: null for the per-step",
        ),
        (
            ["experiment=adding", "model.task.solved_below=0"],
            ADDING,
            "model.task.solved_below=0: null or a number > 0",
        ),
        (
            [
                "experiment=adding",
                "model.embedding._target_=rnnlab.models.components.TokenEmbedding",
            ],
            ADDING,
            "model.embedding._target_='TokenEmbedding': InputProjection",
        ),
        (
            ["model.embedding._target_=rnnlab.models.components.InputProjection"],
            BINARY,
            "model.embedding._target_='InputProjection': TokenEmbedding",
        ),
    ],
)
def test_parts_that_do_not_fit_the_task_are_refused_in_one_line(overrides, meta, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        fast_model([*overrides, *SMALL], meta)


def test_step_readouts_keep_every_step() -> None:
    for name in STEP_READOUTS:
        model = fast_model(["experiment=copy", f"model/readout={name}", *SMALL], COPY)
        batch = _batch(Recall)
        assert model(model.inputs(batch), batch["lengths"]).shape == (4, 7, 8)


@pytest.mark.slow
def test_a_tiny_lstm_solves_the_adding_task_over_ten_steps() -> None:
    """Full-batch Adam on 512 sequences: below Le et al.'s 0.01 on 512 unseen ones."""
    from rnnlab.data import AddingDataModule

    data = AddingDataModule(seq_len=10, num_train=512, num_val=1, num_test=512, seed=0)
    data.setup("fit")
    train, test = (data.splits[s].tensors for s in ("train", "test"))
    model = fast_model(
        ["experiment=adding", "model=lstm", "model.hidden_size=16", "model.embedding_dim=8"], ADDING
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        loss = model.loss(model(train["inputs"], train["lengths"]), train["labels"])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        mse = model.loss(model(test["inputs"], test["lengths"]), test["labels"])
    assert mse < 0.01


def test_truncated_bptt_reads_vector_inputs_in_chunks_with_the_state_carried() -> None:
    model = fast_model(["experiment=adding", "model.tbptt_steps=3", *SMALL], ADDING).eval()
    batch = _batch(Regression)  # 7 steps: chunks of 3, 3 and 1
    chunks = [outputs for _, outputs in model.tbptt_losses(batch)]
    assert len(chunks) == 3
    torch.testing.assert_close(chunks[-1], model(batch["inputs"], batch["lengths"]))
