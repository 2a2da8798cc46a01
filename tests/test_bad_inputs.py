"""Every bad input tried so far, and the one line it must get. Grow this table."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from rnnlab.meta import DataMeta
from rnnlab.run.train import train
from rnnlab.utils import extras
from rnnlab.utils.cli import group_choice_missing_extra, unknown_group_choice, unknown_key
from tests.conftest import CONF, ROOT, TINY, compose_cfg, make_reviews
from tests.models.conftest import make_model


class Opaque:
    """Anything that is not plain data: a checkpoint holding it must be refused."""


def _folder(tmp: Path, splits: dict[str, pa.Table]) -> Path:
    (tmp / "plain_text").mkdir(parents=True)
    for name, table in splits.items():
        pq.write_table(table, tmp / "plain_text" / f"{name}-00000-of-00001.parquet")
    return tmp


def _reviews(n: int = 20) -> pa.Table:
    texts, labels = make_reviews(n, 0)
    return pa.table({"text": texts, "label": labels})


def _bad_data(kind: str, tmp: Path) -> Path:
    if kind == "no_test_split":
        return _folder(tmp, {"train": _reviews()})
    if kind == "labels_0_1_2":
        table = pa.table({"text": ["a", "b", "c"] * 4, "label": [0, 1, 2] * 4})
        return _folder(tmp, {"train": table, "test": table})
    if kind == "missing_texts":
        table = pa.table({"text": ["good", None, "bad", "ok"] * 3, "label": [1, 0, 0, 1] * 3})
        return _folder(tmp, {"train": table, "test": table})
    if kind == "splits_disagree":
        return _folder(
            tmp, {"train": pa.table({"review": ["a"] * 4, "label": [0, 1] * 2}), "test": _reviews()}
        )
    table = pa.table({"review": ["a", "b"] * 4, "label": [0, 1] * 4})
    return _folder(tmp, {"train": table, "test": table})


def _bad_ckpt(kind: str, tmp: Path) -> Path:
    path = tmp / f"{kind}.ckpt"
    if kind == "truncated":
        buffer = tmp / "full.ckpt"
        torch.save({"state_dict": {"w": torch.ones(1000)}}, buffer)
        path.write_bytes(buffer.read_bytes()[:300])
    elif kind == "not_a_checkpoint":
        path.write_text("these are not the weights you are looking for")
    elif kind in ("other_architecture", "language_model"):
        overrides = ["model=lstm", "model.hidden_size=99"]
        if kind == "language_model":
            overrides = ["experiment=imdb_lm", "model=gru", "model.decoder.cutoffs=[20,40]"]
        model = make_model(overrides, DataMeta(100, 0, "{}", ("neg", "pos")))
        checkpoint = {"state_dict": model.state_dict(), "model_config": model.config}
        torch.save(checkpoint, path)
    elif kind == "pickled_object":
        torch.save({"state_dict": {}, "payload": Opaque()}, path)
    elif kind == "no_state_dict":
        torch.save({"weights": torch.ones(2)}, path)
    return path


# (overrides, expected message fragment)
CONFIG_ROWS = [
    (["model.hidden_size=0"], "model.hidden_size=0: an integer >= 1"),
    (["model.hidden_size=-3"], "model.hidden_size=-3: an integer >= 1"),
    (["model.embedding_dim=0"], "model.embedding_dim=0: an integer >= 1"),
    (["model.num_layers=0"], "model.num_layers=0: an integer >= 1"),
    (["data.batch_size=0"], "data.batch_size=0: an integer >= 1"),
    (["data.eval_batch_size=-1"], "data.eval_batch_size=-1: an integer >= 1"),
    (["data.vocab_size=0"], "data.vocab_size=0: an integer > 2"),
    (["data.max_len=0"], "data.max_len=0: an integer >= 1"),
    (["data.val_fraction=0"], "data.val_fraction=0: a number in (0, 1)"),
    (["data.val_fraction=1.5"], "data.val_fraction=1.5: a number in (0, 1)"),
    (["data.truncation=middle"], "data.truncation='middle': one of ['head', 'tail', 'head_tail']"),
    (["data.punctuation=some"], "data.punctuation='some': one of ['keep', 'drop']"),
    (
        ["data.tokenizer=sentencepiece"],
        "data.tokenizer='sentencepiece': one of ['wordlevel', 'bpe']",
    ),
    (["model.tbptt_steps=0"], "model.tbptt_steps=0: null (full BPTT) or an integer >= 1"),
    (["model.tbptt_steps=-2"], "model.tbptt_steps=-2: null (full BPTT) or an integer >= 1"),
    (
        ["model.tbptt_steps=8", "model.bidirectional=true"],
        "model.tbptt_steps=8: null with model.bidirectional=true",
    ),
    (["model.dropout=1.0"], "model.dropout=1.0: a number in [0, 1)"),
    (["model.dropout=-0.1"], "model.dropout=-0.1: a number in [0, 1)"),
    (["model.lr_decay=0.5"], "model.lr_decay=0.5: a number >= 1"),
    (
        ["model=rnn", "model.encoder.nonlinearity=sigmoid"],
        "model.encoder.nonlinearity='sigmoid': one of ['tanh', 'relu']",
    ),
    (
        ["model=elman", "model.encoder.nonlinearity=sigmoid"],
        "model.encoder.nonlinearity='sigmoid': one of ['tanh', 'relu']",
    ),
    (["model.embedding.init_range=0"], "model.embedding.init_range=0: null or a number > 0"),
    (
        ["model=mingru", "model.encoder.mode=scan"],
        "model.encoder.mode='scan': one of ['parallel', 'blocked', 'sequential']",
    ),
    (["model=lru", "model.encoder.block_size=0"], "model.encoder.block_size=0: an integer >= 1"),
    (
        ["model/readout=attention", "model.readout.attention_size=0"],
        "model.readout.attention_size=0: an integer >= 1",
    ),
    (["trainer.max_epochs=two"], "trainer.max_epochs='two': int or None expected"),
    (["trainer.precision=17"], "trainer.precision=17: 64 or 32 or 16 or 'transformer-engine' or"),
    (["model.optimizer.lr=fast"], "model.optimizer.lr='fast': float or Tensor expected"),
    (
        ["+model.scheduler.anneal_strategy=cosine"],
        "model.scheduler.anneal_strategy='cosine': 'cos' or 'linear' expected",
    ),
    (
        ["+model.hiden_size=64"],
        "model.hiden_size: not a parameter of rnnlab.models.RNNClassifier; "
        "did you mean model.hidden_size?",
    ),
    (
        ["+trainer.max_epoch=3"],
        "trainer.max_epoch: not a parameter of lightning.Trainer; did you mean trainer.max_epochs?",
    ),
    (["objective.mode=up"], "objective.mode='up': one of ['min', 'max']"),
    (
        ["objective.metric=val/loss"],
        "objective.mode=None: min or max: objective.metric='val/loss' is not the model's own",
    ),
]
DATA_ROWS = [
    ("does_not_exist", "no such folder"),
    ("no_test_split", "data.test_split='test': no such split (found ['train'])"),
    ("labels_0_1_2", "data.num_classes=2: split 'train' has labels [0, 1, 2]; allowed 0..1"),
    ("missing_texts", "data.text_column='text': split 'train' has 3 missing text(s)"),
    (
        "no_text_column",
        "data.text_column='text': split 'train' has no such column (found ['review', 'label'])",
    ),
    ("splits_disagree", "could not load a dataset there (DatasetGenerationError"),
]
CKPT_ROWS = [
    ("does_not_exist", "no such file"),
    ("truncated", "not a readable checkpoint (truncated or corrupt?)"),
    ("not_a_checkpoint", "not a readable checkpoint"),
    ("no_state_dict", "not a Lightning checkpoint"),
    ("pickled_object", "refused, it holds objects other than plain data"),
    ("other_architecture", "belongs to a different architecture ("),
    ("language_model", "not a RNNClassifier checkpoint"),
    ("last_without_run", "ckpt_path='last'"),
]


def _options(group: str) -> str:
    """The options on disk, as the error lists them: the registry is conf/ itself."""
    return ", ".join(sorted(p.stem for p in (CONF / group).glob("*.yaml")))


# every config group on disk (a folder of options), hydra's own excepted
GROUPS = sorted(
    str(folder.relative_to(CONF))
    for folder in CONF.rglob("*")
    if folder.is_dir() and any(folder.glob("*.yaml")) and "hydra" not in folder.parts
)
GROUP_ROWS = [
    (f"{group}=nope", f"{group}='nope': unknown; choose one of {_options(group)}")
    for group in GROUPS
]


def _expect_one_line_error(overrides, data, hub_dir, cache_dir, tmp_path, capsys, fragment) -> None:
    out = tmp_path / "run"
    cfg = compose_cfg(
        "train", [*TINY, "model=gru", "debug=fdr", *overrides], out, cache_dir, data or hub_dir
    )
    with pytest.raises(SystemExit) as exit_info:
        train(cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and fragment in err[-1], err
    assert not (out / "metrics.json").exists()
    assert not list(out.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("overrides", "fragment"), CONFIG_ROWS, ids=[" ".join(r[0]) for r in CONFIG_ROWS]
)
def test_bad_config_value_gets_one_line(
    overrides, fragment, hub_dir, cache_dir, tmp_path, capsys
) -> None:
    _expect_one_line_error(overrides, None, hub_dir, cache_dir, tmp_path, capsys, fragment)


@pytest.mark.parametrize(("kind", "fragment"), DATA_ROWS, ids=[r[0] for r in DATA_ROWS])
def test_bad_data_folder_gets_one_line(
    kind, fragment, hub_dir, cache_dir, tmp_path, capsys
) -> None:
    data = tmp_path / "missing" if kind == "does_not_exist" else _bad_data(kind, tmp_path / "data")
    _expect_one_line_error([], data, hub_dir, cache_dir, tmp_path, capsys, fragment)


@pytest.mark.parametrize(("kind", "fragment"), CKPT_ROWS, ids=[r[0] for r in CKPT_ROWS])
def test_bad_checkpoint_gets_one_line(kind, fragment, hub_dir, cache_dir, tmp_path, capsys) -> None:
    if kind == "last_without_run":
        ckpt = "last"
    elif kind == "does_not_exist":
        ckpt = str(tmp_path / "nope.ckpt")
    else:
        ckpt = str(_bad_ckpt(kind, tmp_path))
    _expect_one_line_error(
        [f"ckpt_path={ckpt}", "trainer.fast_dev_run=false", "trainer.max_epochs=1"],
        None,
        hub_dir,
        cache_dir,
        tmp_path,
        capsys,
        fragment,
    )


@pytest.mark.parametrize(("arg", "fragment"), GROUP_ROWS, ids=[r[0] for r in GROUP_ROWS])
def test_unknown_config_group_option_gets_one_line(arg, fragment) -> None:
    assert unknown_group_choice([arg], CONF) == fragment


@pytest.mark.parametrize(
    ("arg", "module", "package", "extra"),
    [
        ("hparams_search=imdb_optuna", "optuna", "optuna", "optuna"),
        (
            "hydra/launcher=slurm",
            "hydra_plugins.hydra_submitit_launcher",
            "hydra-submitit-launcher",
            "slurm",
        ),
    ],
)
def test_preset_whose_extra_is_missing_gets_one_line(
    arg, module, package, extra, monkeypatch
) -> None:
    group = arg.partition("=")[0]
    monkeypatch.setitem(
        extras.GROUP_EXTRAS, group, (((f"{module}_not_installed", package),), extra)
    )
    assert group_choice_missing_extra(["model=gru", arg]) == (
        f'{arg} needs {package}: pip install -e ".[{extra}]"'
    )
    assert group_choice_missing_extra([f"{group}=null"]) is None


def test_installed_extras_pass() -> None:
    assert (
        group_choice_missing_extra(["hparams_search=imdb_optuna", "hydra/launcher=slurm"]) is None
    )


def test_an_extra_a_lazy_loader_imported_still_counts_as_installed(monkeypatch) -> None:
    """optuna_integration imports itself lazily and leaves `__spec__` None, which find_spec
    refuses once the module is in sys.modules (after a search ran in the same process)."""
    lazy = types.ModuleType("lazy_extra")
    lazy.__spec__ = None
    monkeypatch.setitem(sys.modules, "lazy_extra", lazy)
    assert extras.importable("lazy_extra")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_hub_and_no_local_copy_fails_fast_in_one_line(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("IMDB_DIR", "HF_HUB_OFFLINE")}
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert time.perf_counter() - start < 30  # the Hub's own retries take about 30 s more
    assert result.stderr.strip().splitlines()[-1] == (
        "error: data.path='stanfordnlp/imdb': the Hugging Face Hub cannot be reached and no local "
        "copy was given; set data.path=<folder> (data=imdb reads IMDB_DIR=<folder>, data=sst2 "
        "SST2_DIR)"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("eval.py", "pass ckpt_path=<run>/checkpoints/best.ckpt"),
        ("generate.py", "pass ckpt_path=<lm run>/checkpoints/best.ckpt"),
        ("predict.py", "pass ckpt_path=<run>/checkpoints/best.ckpt"),
    ],
)
def test_entry_point_without_checkpoint_gets_one_line(script, fragment, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / script), f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: ckpt_path=None: required; {fragment}"


# keys the composed config does not have (Hydra's own error spans lines and suggests a +)
KEY_ROWS = [
    (
        ["model.hiden_size=64"],
        "model.hiden_size: model has no key 'hiden_size'; did you mean model.hidden_size? "
        "(a new key takes a +: +model.hiden_size=...)",
    ),
    (["model.encodr.forget_bias=1.0"], "model has no key 'encodr'; did you mean model.encoder?"),
    (["trainer.max_epoch=3"], "trainer has no key 'max_epoch'; did you mean trainer.max_epochs?"),
    (["-m", "model=rnn,gru", "data.max_lenn=8,16"], "did you mean data.max_len?"),
    (["experiment=adding", "data.seq_length=200"], "did you mean data.seq_len?"),
]
# keys that exist once the command line's own choices and additions are composed
GOOD_KEY_ARGS = [
    ["model.hidden_size=64"],
    ["model=rnn", "model.encoder.nonlinearity=relu"],
    ["+model.new_key=1", "model.new_key=2"],
    ["-m", "model=rnn,gru", "model.hidden_size=8,16"],
    ["experiment=adding", "data.seq_len=200"],
    ["hydra.job.chdir=true", "hydra/launcher=basic"],
]


@pytest.mark.parametrize(("args", "fragment"), KEY_ROWS, ids=[" ".join(r[0]) for r in KEY_ROWS])
def test_unknown_key_gets_one_line_with_the_nearest_name(args, fragment) -> None:
    assert fragment in unknown_key(args, CONF, "train")


@pytest.mark.parametrize("args", GOOD_KEY_ARGS, ids=[" ".join(a) for a in GOOD_KEY_ARGS])
def test_keys_the_config_has_pass(args) -> None:
    assert unknown_key(args, CONF, "train") is None


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("model=transformer", f"model='transformer': unknown; choose one of {_options('model')}"),
        ("model.hiden_size=64", KEY_ROWS[0][1]),
    ],
)
def test_command_line_error_is_one_line_without_traceback(arg, message, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), arg],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "logs").exists()


def test_bad_value_from_the_command_line_prints_no_traceback(tmp_path, hub_dir, cache_dir) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "data.max_len=0",
            f"data.path={hub_dir}",
            f"paths.cache_dir={cache_dir}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: data.max_len=0: an integer >= 1"
    assert "Traceback" not in result.stderr


OUTPUT_DIR_ROWS = [
    ("run_dir_under_a_file", ["hydra.run.dir={file}/run"], "hydra.run.dir='{file}/run'"),
    ("log_dir_under_a_file", ["paths.log_dir={file}/logs"], "hydra.run.dir='{file}/logs/train/"),
    (
        "sweep_dir_under_a_file",
        ["-m", "hydra.sweep.dir={file}/sweep", "model=rnn,gru"],
        "hydra.sweep.dir='{file}/sweep'",
    ),
    ("read_only_system_dir", ["hydra.run.dir=/proc/sys/rnnlab"], "(/proc/sys is not writable)"),
]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [row[1:] for row in OUTPUT_DIR_ROWS],
    ids=[row[0] for row in OUTPUT_DIR_ROWS],
)
def test_unwritable_output_dir_gets_one_line_and_writes_nothing(args, fragment, tmp_path) -> None:
    file = tmp_path / "a_file"
    file.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *[a.format(file=file) for a in args]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and fragment.format(file=file) in line
    assert "cannot be written" in line and "folder you can write" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
