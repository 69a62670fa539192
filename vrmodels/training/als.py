"""The ALS model: its parameters and its fit (implicit's AlternatingLeastSquares on the CPU)."""

from __future__ import annotations

from dataclasses import dataclass

from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix

from features.options import option


@dataclass(frozen=True)
class TrainParams:
    """Defaults chosen for robustness, not for one data set (docs/training.md).

    implicit weighs a watched pair by alpha × confidence and every unwatched video by 1, and does not scale the
    regularization with a user's activity: when regularization exceeds a typical user's alpha × confidence mass,
    user factors collapse towards popularity. alpha 5 / regularization 20 stayed within 80% of the best NDCG@10
    on each of ten logs measured (80 to 6,000 videos, 8 to 50 clicks per user, MovieLens-100K); `--tune` finds
    the optimum of a given log.
    """

    factors: int = option(64, "latent factors per user and video")
    regularization: float = option(20.0, "L2 regularization of the factors")
    alpha: float = option(5.0, "weight of a watched pair's confidence against an unwatched video's 1")
    iterations: int = option(15, "alternating least squares sweeps")
    seed: int = option(42, "seed of the factors' initialisation (and of every sample training draws)")


def fit_als(user_items: csr_matrix, params: TrainParams, show_progress: bool = False) -> AlternatingLeastSquares:
    model = AlternatingLeastSquares(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations,
        random_state=int(params.seed),
        num_threads=0,
    )
    model.fit(user_items, show_progress=show_progress)
    return model
