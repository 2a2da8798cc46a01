"""python eval.py ckpt_path=<run>/checkpoints/best.ckpt"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnlab.run.evaluate import evaluate
from rnnlab.utils.cli import exit_on_bad_command_line


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    exit_on_bad_command_line(Path(__file__).parent / "conf", "eval")
    main()
