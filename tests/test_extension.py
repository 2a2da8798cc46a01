"""The README's extension recipe, followed as a stranger would: copy the project, drop in a gated
cell, an IndRNN-style cell (its recurrent weight a vector) and a read-out, one .py + one .yaml
each (tests/extension_kit/), edit nothing else; then train them every way the README promises,
evaluate their checkpoints and run the suite with the new files present."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import ROOT, TOPICS, make_sentences

pytestmark = pytest.mark.slow

KIT = Path(__file__).parent / "extension_kit"
# each kit file -> where the README's "Extending rnnlab" puts it
PLACES = {
    "mgu.py": "src/rnnlab/models/components/mgu.py",
    "mgu.yaml": "conf/model/mgu.yaml",
    "vector_rnn.py": "src/rnnlab/models/components/vector_rnn.py",
    "vector_rnn.yaml": "conf/model/vector_rnn.yaml",
    "sum_readout.py": "src/rnnlab/models/components/sum_readout.py",
    "sum.yaml": "conf/model/readout/sum.yaml",
    "questions.yaml": "conf/data/questions.yaml",
}
# the options the kit adds, as the parametrised tests' ids name them
OPTIONS = sorted({Path(place).stem for place in PLACES.values() if place.endswith(".yaml")})
SIZES = ["model.hidden_size=8", "model.embedding_dim=8"]
STEPS = [
    "trainer.accelerator=cpu",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "callbacks.progress_bar=null",
    "extras.print_config=false",
]
TEXT = ["data.vocab_size=100", "data.batch_size=8", "data.eval_batch_size=32"]
ADDING = ["data.seq_len=6", "data.num_train=64", "data.num_val=16", "data.num_test=16"]
RUNS = {
    "full_bptt": ["model=mgu", "model/readout=sum", *TEXT],
    "tbptt_bf16": [
        "model=mgu",
        "model/readout=sum",
        "model.tbptt_steps=3",
        "trainer.precision=bf16-mixed",
        *TEXT,
    ],
    "bidirectional_2_layers": [
        "model=mgu",
        "model/readout=sum",
        "model.bidirectional=true",
        "model.num_layers=2",
        *TEXT,
    ],
    "adding": ["experiment=adding", "model=mgu", *ADDING],
    "vector_cell": ["model=vector_rnn", "model/readout=sum", *TEXT],
    "vector_cell_tbptt_bf16": [
        "model=vector_rnn",
        "model.tbptt_steps=3",
        "trainer.precision=bf16-mixed",
        *TEXT,
    ],
    "vector_cell_adding": ["experiment=adding", "model=vector_rnn", *ADDING],
    "dataset": ["data=questions", "model=mgu", "data.batch_size=8"],
}


def _project_files() -> list[str]:
    """What a clean clone holds: git's tracked files and the untracked ones it does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clone")
    for name in _project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, root / name)
    for kit_file, place in PLACES.items():
        assert not (root / place).exists(), f"{place} is shipped: pick another name for the kit"
        shutil.copy2(KIT / kit_file, root / place)
    return root


def _run(clone: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """A command in the clone, importing the clone's own package (not the installed one)."""
    env = {**os.environ, "PYTHONPATH": str(clone / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=clone, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def questions_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The brought dataset's files: CSV, its labels topic names (strings), not ids."""
    root = tmp_path_factory.mktemp("questions")
    for split, n, seed in (("train", 240, 0), ("test", 80, 1)):
        texts, labels = make_sentences(n, num_classes=4, seed=seed)
        topics = [list(TOPICS)[label] for label in labels]
        pd.DataFrame({"question": texts, "topic": topics}).to_csv(
            root / f"{split}.csv", index=False
        )
    return root


def _data_path(run: str, hub_dir: Path, questions_csv: Path) -> list[str]:
    if "experiment=adding" in RUNS[run]:
        return []  # generated, no files
    return [f"data.path={questions_csv if 'data=questions' in RUNS[run] else hub_dir}"]


@pytest.mark.parametrize("run", RUNS, ids=list(RUNS))
def test_a_brought_cell_read_out_and_dataset_train_and_evaluate_without_edits(
    run, clone, hub_dir, questions_csv, tmp_path
) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    paths = [f"hydra.run.dir={out}", f"paths.cache_dir={cache}"]
    data = _data_path(run, hub_dir, questions_csv)
    trained = _run(clone, "train.py", *RUNS[run], *SIZES, *STEPS, *data, *paths)
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = out / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    evaluated = _run(
        clone, "eval.py", f"ckpt_path={checkpoint}", *paths[1:], f"hydra.run.dir={tmp_path / 'e'}"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "test/loss" in evaluated.stdout + evaluated.stderr
    if "data=questions" in RUNS[run]:
        # the string labels became ids by sorted name, and the names travel in the checkpoint
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        assert list(saved["meta"]["label_names"]) == sorted(TOPICS)


def test_an_init_that_needs_matrices_refuses_the_vector_cell_in_one_line(clone, hub_dir) -> None:
    result = _run(
        clone, "train.py", "model=vector_rnn", "model/init=orthogonal", f"data.path={hub_dir}"
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "VectorRNNEncoder reports no (gates * H, H) recurrent matrices" in last
    assert "Traceback" not in result.stderr


@pytest.mark.multiprocess  # the suite in the copy runs on both cores
def test_the_suite_covers_the_new_files_and_passes_with_them(clone) -> None:
    """`pytest -m "not real_data and not slow and not gpu"`, whole, in the copy with the new
    files: the parametrised tests read their options from conf/, so they pick the new files up
    (every new option names some test ids), and everything passes."""
    marks = "not real_data and not slow and not gpu"
    collected = _run(clone, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-m", marks)
    assert collected.returncode == 0, collected.stdout[-3000:]
    ids = collected.stdout.splitlines()
    for option in OPTIONS:  # as a parameter id: [model=mgu], [gru-sum], ...
        assert any(re.search(rf"[\[=-]{option}[\]-]", i) for i in ids), option
    suite = _run(clone, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", marks, timeout=1200)
    assert suite.returncode == 0, suite.stdout[-5000:]
    assert re.search(r"\d+ passed", suite.stdout) and " failed" not in suite.stdout
