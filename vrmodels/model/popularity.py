"""The two popularity rankings every part of the product agrees on, from the users × videos confidence matrix."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix


def clicks(user_items: csr_matrix) -> np.ndarray:
    """Distinct users per video: how often it was clicked, satisfying or not (the most-popular baseline)."""
    return np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(np.float32)


def engagement(user_items: csr_matrix) -> np.ndarray:
    """Sum of confidence per video: how much it was watched through, liked and shared (skips count for little).

    The model's `popularity.npy`, and the ranking the server falls back to for users it cannot personalise."""
    return np.asarray(user_items.sum(axis=0), dtype=np.float32).ravel()
