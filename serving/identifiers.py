"""Random ids for requests and answers, cheap enough for every one of them."""

from __future__ import annotations

import random


def random_id(bits: int) -> str:
    """`bits` random bits as fixed-width lowercase hex, from the worker's own generator: Python reseeds it in every
    forked worker, so workers never share a sequence, and unlike os.urandom it costs no system call."""
    return f"{random.getrandbits(bits):0{bits // 4}x}"
