"""python train.py model=gru data.max_len=200 ..."""

import hydra
from omegaconf import DictConfig

from rnnlab.tasks.train import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg).get("val/acc_best")


if __name__ == "__main__":
    main()
