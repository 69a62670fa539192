"""The learned ranker: a LightGBM lambdarank model over the two-stage features, stored as LightGBM's text format.

`ranker.txt` is written by training (vrmodels.training.ranker) and read here; its feature names must be the
ones the serving code computes (vrmodels.model.twostage.FEATURES), or the model is refused at load. LightGBM is
imported on first use: models without a ranker never load it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RANKER_FILE = "ranker.txt"


class RankerError(ValueError):
    """A ranker file that cannot be read, or that was learned on other features; the message names the file."""


class Ranker:
    def __init__(self, booster: object, num_threads: int = 1):
        self.booster = booster
        self.num_threads = num_threads

    @classmethod
    def load(cls, directory: Path, features: tuple[str, ...], num_threads: int = 1) -> Ranker:
        import lightgbm

        path = directory / RANKER_FILE
        try:
            booster = lightgbm.Booster(model_file=str(path))
        except lightgbm.basic.LightGBMError as exc:
            raise RankerError(f"{path}: not a LightGBM model ({str(exc).splitlines()[0]})") from None
        if tuple(booster.feature_name()) != tuple(features):
            raise RankerError(
                f"{path}: learned on features {booster.feature_name()}, this code computes {list(features)}"
            )
        return cls(booster, num_threads)

    def save(self, directory: Path) -> str:
        self.booster.save_model(str(directory / RANKER_FILE))  # type: ignore[attr-defined]
        return RANKER_FILE

    def score(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0, dtype=np.float64)
        return self.booster.predict(features, num_threads=self.num_threads)  # type: ignore[attr-defined]

    def importances(self) -> dict[str, float]:
        """Total gain per feature, as shares of the whole."""
        gains = np.asarray(self.booster.feature_importance("gain"), dtype=np.float64)  # type: ignore[attr-defined]
        total = gains.sum() or 1.0
        return {name: round(float(gain / total), 4) for name, gain in zip(self.booster.feature_name(), gains)}  # type: ignore[attr-defined]
