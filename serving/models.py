"""The model a worker serves: loading → ready, or loading → failed; only a ready model answers.

gunicorn's master maps the model (`load`) before it forks, so every worker shares what loading allocates;
each worker then warms it (`warm`: one scoring pass on every path) before it accepts a connection.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from serving.budget import ResponseBudget
from serving.errors import ModelNotReady
from serving.predictor import Predictor
from serving.settings import Settings, memory_limit_mb
from serving.wire import EvaluationHeadline, Judged, ModelInfo, ServingAids
from vrmodels.model.manifest import Versus
from vrmodels.model.recommend import Recommender, ScoringOptions

log = logging.getLogger(__name__)


MIB = 2**20


def files_bytes(directory: Path) -> int:
    """What a model directory maps: the size of every file under it."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


class ModelTooLarge(RuntimeError):
    """The model's files alone exceed the memory this container may use."""


def check_fits(directory: Path, limit_mb: float) -> None:
    """ModelTooLarge naming both sizes when the model's files exceed `limit_mb`: mapped, they would be paged in and
    out on every request, and what a worker allocates would get it killed by the OOM killer, again at every
    restart; refused at start, the reason stays in /ping's answer and the log."""
    size_mb = files_bytes(directory) / MIB
    if size_mb > limit_mb:
        raise ModelTooLarge(
            f"{directory}: the model's files take {size_mb:,.0f} MB, more than the {limit_mb:,.0f} MB this "
            "container may use (its memory limit); give it more memory (a larger instance type) or serve a "
            "smaller model"
        )


@dataclass(frozen=True)
class LoadedModel:
    """A model that can answer: its recommender, its response budget, and the headers that name its version."""

    recommender: Recommender
    budget: ResponseBudget
    headers: list[tuple[bytes, bytes]] = field(repr=False)

    @classmethod
    def load(cls, directory: Path, settings: Settings, private: bool = False) -> LoadedModel:
        """`private`: loaded by one worker for itself (multi-model mode), so nothing beyond the mapped files is
        allocated: the memory budget counts files, and a scoring copy of the factors would be one per worker."""
        options = ScoringOptions(
            use_ann=settings.use_ann,
            ann_candidates=settings.ann_candidates,
            ann_ef_search=settings.ann_ef_search,
            column_major_copy=not private,
        )
        recommender = Recommender.load(directory, options)
        budget = ResponseBudget(settings.max_response_bytes, recommender.video_count, recommender.longest_video_id)
        version = recommender.model_version.encode("ascii", "replace")
        # X-Amzn-SageMaker-Custom-Attributes is the one response header SageMaker passes back: it tells A/B
        # variants apart.
        headers = [(b"x-model-version", version), (b"x-amzn-sagemaker-custom-attributes", b"model-version=" + version)]
        return cls(recommender, budget, headers)

    @property
    def version(self) -> str:
        return self.recommender.model_version

    def info(self) -> ModelInfo:
        """What GET /info tells of this model: its version and format, its data, its serving aids, and how it
        fared against the best baseline in its own evaluation."""
        recommender = self.recommender
        manifest, headline = recommender.manifest, recommender.manifest.headline()
        return ModelInfo(
            modelVersion=self.version,
            formatVersion=manifest.format_version,
            createdAt=manifest.created_at,
            algorithm=manifest.algorithm,
            kind=manifest.kind,
            users=recommender.user_count,
            videos=recommender.video_count,
            serving=ServingAids(
                precomputedTopN=recommender.topn_size,
                precomputedUpNext=recommender.up_next_size,
                approximateTopK=recommender.approximate,
                twoStage=recommender.ranking.learned,
                catalogue=manifest.catalogue is not None,
            ),
            evaluation=EvaluationHeadline(
                split=headline.split,
                k=headline.k,
                shipped=headline.kind,
                ndcg=headline.home.ndcg,
                bestBaseline=headline.home.best_baseline,
                bestBaselineNdcg=headline.home.best_baseline_ndcg,
                inSession=_judged(headline.in_session),
                upNext=_judged(headline.up_next),
            ),
        )


def _judged(versus: Versus | None) -> Judged | None:
    if versus is None:
        return None
    return Judged(ndcg=versus.ndcg, bestBaseline=versus.best_baseline, bestBaselineNdcg=versus.best_baseline_ndcg)


class ModelState:
    def __init__(self, settings: Settings, predictor: Predictor):
        self.settings = settings
        self.predictor = predictor
        self.model_dir = settings.model_dir
        self.status = "loading"
        self.error: str | None = None
        self.model: LoadedModel | None = None
        """Set once warm: what requests are answered with."""
        self._loaded: LoadedModel | None = None
        self._load_seconds = 0.0

    def load(self) -> None:
        """Map the model (no scoring yet): what gunicorn's master does before forking."""
        if self._loaded is not None or self.status == "failed":
            return
        started = time.perf_counter()
        try:
            check_fits(self.model_dir, memory_limit_mb())
            self._loaded = LoadedModel.load(self.model_dir, self.settings)
        except Exception as exc:
            self._fail(exc)
            return
        self._load_seconds = time.perf_counter() - started

    def warm(self) -> None:
        """Load if not done yet, then score once on every path: ready only after that (each worker, after the fork;
        scoring starts thread pools, which must not exist before a fork)."""
        self.load()
        if self._loaded is None:
            return
        started = time.perf_counter()
        try:
            self.predictor.warm_up(self._loaded.recommender)
        except Exception as exc:
            self._fail(exc)
            return
        self.model, self.status = self._loaded, "ready"
        # The model's long-lived objects, moved out of the collector's reach: full collections no longer scan them
        # (tens of milliseconds each: the p99 of every request behind one).
        gc.freeze()
        recommender = self._loaded.recommender
        log.info(
            "model ready",
            extra={
                "model_dir": str(self.model_dir),
                "model_version": recommender.model_version,
                "precomputed_top_n": recommender.topn_size,
                "precomputed_up_next": recommender.up_next_size,
                "approximate_top_k": recommender.approximate,
                "load_seconds": round(self._load_seconds, 3),
                "warm_up_seconds": round(time.perf_counter() - started, 3),
            },
        )

    def _fail(self, exc: Exception) -> None:
        self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("model load failed", extra={"model_dir": str(self.model_dir)})

    async def resolve(self) -> LoadedModel:
        """The model to answer with: 503 until it is loaded and warm."""
        if self.model is None:
            detail = f": {self.error}" if self.error else "; retry when GET /ping answers 200"
            raise ModelNotReady(f"model is {self.status}{detail}")
        return self.model
