"""The second stage's learned model: LightGBM lambdarank over a ranking's features, stored as LightGBM's text format.

`ranker.txt` is written by training (vrmodels.training.learn_ranker) and read here; the ranking that serves it
refuses one learned on other features than it computes (vrmodels.model.ranking). It scores through lleaves, which
compiles the trees to machine code for the host it runs on (at load: 0.05-0.9 s for 10-150 trees): 7× faster
than LightGBM's own prediction over a training's batches and 15× over a served query's 150 candidates
(docs/training.md). Scores agree with LightGBM's to about 1e-14 (a sum in another order); every score the model
gives (precomputed, judged, served) is lleaves'. LightGBM and lleaves are imported on first use: models without a
ranker never load them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

RANKER_FILE = "ranker.txt"


class RankerError(ValueError):
    """A ranker file that cannot be read, or that was learned on other features; the message names the file."""


class LightGBMRanker:
    def __init__(self, booster: object, num_threads: int = 1, *, model_file: Path | None = None):
        """`model_file`: where `booster` was read from (else it is written to a temporary file for lleaves)."""
        self.booster = booster
        self.num_threads = num_threads
        self._compiled = _compiled(booster, model_file)

    @classmethod
    def load(cls, directory: Path, num_threads: int = 1) -> LightGBMRanker:
        import lightgbm

        path = directory / RANKER_FILE
        try:
            booster = lightgbm.Booster(model_file=str(path))
        except lightgbm.basic.LightGBMError as exc:
            raise RankerError(f"{path}: not a LightGBM model ({str(exc).splitlines()[0]})") from None
        return cls(booster, num_threads, model_file=path)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.booster.feature_name())  # type: ignore[attr-defined]

    def expect_features(self, features: tuple[str, ...], directory: Path) -> None:
        """RankerError naming the file unless it was learned on exactly `features`, in order."""
        if self.features != tuple(features):
            raise RankerError(
                f"{directory / RANKER_FILE}: learned on features {list(self.features)}, this code computes "
                f"{list(features)}"
            )

    def save(self, directory: Path) -> str:
        self.booster.save_model(str(directory / RANKER_FILE))  # type: ignore[attr-defined]
        return RANKER_FILE

    def score(self, features: np.ndarray) -> np.ndarray:
        """One score per row of `features` (higher ranks first)."""
        if not len(features):
            return np.zeros(0, dtype=np.float64)
        return self._compiled.predict(features, n_jobs=self.num_threads)

    def importances(self) -> dict[str, float]:
        """Total gain per feature, as shares of the whole."""
        gains = np.asarray(self.booster.feature_importance("gain"), dtype=np.float64)  # type: ignore[attr-defined]
        total = gains.sum() or 1.0
        return {name: round(float(gain / total), 4) for name, gain in zip(self.features, gains)}


def _compiled(booster: object, model_file: Path | None) -> object:
    """The booster's trees compiled by lleaves for this host (lleaves reads LightGBM's text format from a file)."""
    import lleaves

    with tempfile.TemporaryDirectory() as scratch:
        if model_file is None:
            model_file = Path(scratch) / RANKER_FILE
            booster.save_model(str(model_file))  # type: ignore[attr-defined]
        model = lleaves.Model(model_file=str(model_file))
        model.compile()
    return model
