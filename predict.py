"""python predict.py ckpt_path=<run>/checkpoints/best.ckpt text="A wonderful, moving film." """

import sys

import hydra
from omegaconf import DictConfig

from rnnlab.run.predict import predict
from rnnlab.utils.overrides import quote_free_text_args


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    sys.argv = quote_free_text_args(sys.argv, keys=("text",))
    main()
