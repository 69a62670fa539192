"""One thread for BLAS in every process that scores or trains: the call each entry point makes first.

implicit runs many small solves on threads of its own (fold-in, the ALS fit); a threaded BLAS underneath each of
them makes fold-in about 50× slower. The environment variable reaches BLAS libraries loaded later (and the
processes a server forks); threadpoolctl reaches those NumPy and SciPy have loaded already.
"""

from __future__ import annotations

import os


def limit_blas_threads() -> None:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy  # noqa: F401  (loads NumPy's and SciPy's BLAS, so that the limit reaches them)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
