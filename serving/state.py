"""The model a worker serves: loading → ready, or loading → failed; only a ready state serves."""

from __future__ import annotations

import gc
import logging
import time

from serving.budget import ResponseBudget
from serving.environment import Settings
from serving.errors import ModelNotReady
from serving.predictor import Predictor
from vrmodels.recommend import Recommender

log = logging.getLogger(__name__)


class ModelState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.model_dir = settings.model_dir
        self.status = "loading"
        self.error: str | None = None
        self.predictor: Predictor | None = None
        self.budget: ResponseBudget | None = None
        self._loaded: tuple[Predictor, ResponseBudget] | None = None
        self._load_seconds = 0.0
        self.in_flight = 0
        """/invocations requests this worker is answering now (the batcher waits only when others could join)."""

    def load(self) -> None:
        """Map the model (no scoring yet). gunicorn's master calls this before forking, so every worker shares
        what loading allocates (id arrays, ANN metadata, popularity order) instead of holding its own copy."""
        if self._loaded is not None or self.status == "failed":
            return
        started, settings = time.perf_counter(), self.settings
        try:
            recommender = Recommender.load(
                self.model_dir,
                use_ann=settings.use_ann,
                ann_candidates=settings.ann_candidates,
                ann_ef_search=settings.ann_ef_search,
            )
            budget = ResponseBudget(settings.max_response_bytes, recommender.video_count, recommender.longest_video_id)
            predictor = Predictor(
                recommender,
                max_batch=settings.max_batch,
                max_wait=settings.batch_wait_ms / 1000,
                in_flight=lambda: self.in_flight,
            )
        except Exception as exc:
            self._fail(exc)
            return
        self._loaded, self._load_seconds = (predictor, budget), time.perf_counter() - started

    def warm(self) -> None:
        """Load if not done yet, then score once on every path: ready only after that (each worker, after the fork;
        scoring starts thread pools, which must not exist before a fork)."""
        self.load()
        if self._loaded is None:
            return
        predictor, budget = self._loaded
        started = time.perf_counter()
        try:
            predictor.warm_up()
        except Exception as exc:
            self._fail(exc)
            return
        self.predictor, self.budget, self.status = predictor, budget, "ready"
        # The model's long-lived objects, moved out of the collector's reach: full collections no longer scan them
        # (tens of milliseconds each: the p99 of every request behind one).
        gc.freeze()
        log.info(
            "model ready",
            extra={
                "model_dir": str(self.model_dir),
                "model_version": predictor.recommender.model_version,
                "precomputed_top_n": predictor.recommender.topn_size,
                "approximate_top_k": predictor.recommender.approximate,
                "load_seconds": round(self._load_seconds, 3),
                "warm_up_seconds": round(time.perf_counter() - started, 3),
            },
        )

    def _fail(self, exc: Exception) -> None:
        self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("model load failed", extra={"model_dir": str(self.model_dir)})

    def ready(self) -> tuple[Predictor, ResponseBudget]:
        if self.predictor is None or self.budget is None:
            detail = f": {self.error}" if self.error else "; retry when GET /ping answers 200"
            raise ModelNotReady(f"model is {self.status}{detail}")
        return self.predictor, self.budget

    def close(self) -> None:
        if self.predictor is not None:
            self.predictor.close()
