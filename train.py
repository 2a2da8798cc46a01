"""python train.py model=gru data.max_len=200 ..."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnlab.tasks.train import train
from rnnlab.utils.cli import exit_on_unknown_group_choice


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg).get("val/acc_best")


if __name__ == "__main__":
    exit_on_unknown_group_choice(Path(__file__).parent / "conf")
    main()
