"""ALS model training, the versioned artifact format, and the recommend API the server imports."""

import os

# implicit runs many small solves in its own threads; a threaded BLAS underneath makes fold-in ~50× slower.
# The variable covers BLAS libraries loaded from now on; threadpoolctl those NumPy/SciPy loaded already.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy  # noqa: F401  (load NumPy's and SciPy's BLAS so that the limit below reaches them)
import scipy.linalg  # noqa: F401
from threadpoolctl import threadpool_limits

threadpool_limits(1, "blas")
