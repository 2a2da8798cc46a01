"""python generate.py ckpt_path=<lm run>/checkpoints/best.ckpt prompt="This movie was" """

import sys

import hydra
from omegaconf import DictConfig

from rnnlab.run.generate import generate
from rnnlab.utils.overrides import quote_free_text_args


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    generate(cfg)


if __name__ == "__main__":
    sys.argv = quote_free_text_args(sys.argv, keys=("prompt",))
    main()
