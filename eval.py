"""python eval.py ckpt_path=<run>/checkpoints/best.ckpt"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnlab.tasks.evaluate import evaluate
from rnnlab.utils.cli import exit_on_unknown_group_choice


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    exit_on_unknown_group_choice(Path(__file__).parent / "conf")
    main()
