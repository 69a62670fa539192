"""Factors for videos with little or no history, from what the catalogue says of them.

ALS has nothing to say of a video nobody has watched (a new upload) and little of one a few users have: its
factors stay near zero, so it never ranks. Its channel and category say much: a channel's videos share an
audience. Each video gets a prior, the mean direction of its channel's established videos (those watched by
ESTABLISHED users or more), shrunk towards its category's and then the platform's mean by how many established
videos back it (a ridge over channel and category one-hots, solved in closed form), scaled to the typical length
of an established video's factors. A video's factors are then its own and the prior, weighed by its history:
n / (n + PRIOR_WEIGHT) for its own, n its training users. Videos that do not exist yet at the model's time keep
zero factors.
"""

from __future__ import annotations

import numpy as np

ESTABLISHED = 3
CHANNEL_SHRINKAGE = 3.0  # established videos a channel needs before its own mean outweighs its category's
CATEGORY_SHRINKAGE = 5.0
PRIOR_WEIGHT = 3.0


def with_priors(
    item_factors: np.ndarray, users: np.ndarray, channels: np.ndarray, *, categories: np.ndarray, exists: np.ndarray
) -> np.ndarray:
    """Item factors blended with their metadata priors; `users` per video its training users, `exists` whether
    it existed at the model's time."""
    factors = np.asarray(item_factors, dtype=np.float32)
    established = users >= ESTABLISHED
    if not established.any():
        return np.where(exists[:, None], factors, 0.0).astype(np.float32)
    platform = factors[established].mean(axis=0)
    typical_norm = float(np.linalg.norm(factors[established], axis=1).mean())
    category_mean = _shrunk_means(factors, categories, established, platform[None, :], CATEGORY_SHRINKAGE)
    prior_of_category = np.where(categories[:, None] >= 0, category_mean[np.maximum(categories, 0)], platform)
    prior = _shrunk_means(factors, channels, established, prior_of_category, CHANNEL_SHRINKAGE, per_video=True)
    lengths = np.linalg.norm(prior, axis=1, keepdims=True)
    prior = prior / np.where(lengths > 0, lengths, 1.0) * typical_norm
    weight = (users / (users + PRIOR_WEIGHT))[:, None]
    blended = weight * factors + (1 - weight) * prior
    return np.where(exists[:, None], blended, 0.0).astype(np.float32)


def _shrunk_means(
    factors: np.ndarray,
    groups: np.ndarray,
    established: np.ndarray,
    fallback: np.ndarray,
    shrinkage: float,
    per_video: bool = False,
) -> np.ndarray:
    """Per group (or, with `per_video`, per video by its group), the mean of its established videos' factors
    shrunk towards `fallback` (one row, or one per video) as if it held `shrinkage` more videos there."""
    width = int(groups.max(initial=-1)) + 1
    member = established & (groups >= 0)
    sums = np.zeros((max(width, 1), factors.shape[1]))
    np.add.at(sums, groups[member], factors[member])
    counts = np.bincount(groups[member], minlength=max(width, 1)).astype(np.float64)
    if not per_video:
        return (sums + shrinkage * fallback) / (counts + shrinkage)[:, None]
    known = groups >= 0
    index = np.maximum(groups, 0)
    own = (sums[index] + shrinkage * fallback) / (counts[index] + shrinkage)[:, None]
    return np.where(known[:, None], own, fallback)
