"""python train.py model=gru data.max_len=200 ..."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnlab.run.search import run_search
from rnnlab.run.train import train
from rnnlab.utils.cli import exit_on_bad_command_line
from rnnlab.utils.resume import resume_arguments


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """The best value of the objective (cfg.objective, filled from the model's own)."""
    if cfg.get("search"):  # hparams_search=...: trials of train in this process
        return run_search(cfg, train)
    return train(cfg).get(f"{cfg.objective.metric}_best")


if __name__ == "__main__":
    sys.argv[1:] = resume_arguments(sys.argv[1:])  # ckpt_path=last: the run's own overrides
    exit_on_bad_command_line(Path(__file__).parent / "conf", "train")
    main()
