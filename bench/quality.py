"""Model quality benchmarks: the realistic bundled sample, MovieLens-100K, and the bad-input contract.

    python -m bench.quality [--skip-movielens] [--tune-trials 50]

Targets:
- bundled sample with its catalogue, time split (issue 18): the shipped model's NDCG@10 ≥ 2× ALS alone and
  ≥ 2× trending; on videos published in the 3 days before the cut ≥ 2× trending;
- bundled sample without its catalogue, per-user split (issue 8): ALS NDCG@10 ≥ 5× most-popular;
- MovieLens-100K without a catalogue (per-user temporal 80/20): default NDCG@10 ≥ 0.18, --tune ≥ 0.20;
  with its u.item catalogue (time split): the shipped model no worse than ALS alone;
- bad input (negative or missing video_duration with watch_seconds, a relevance threshold outside 0..1, an
  unknown event name) exits non-zero naming the file, row and column, and writes nothing.
Anchors measured in the same run: the skip-blind confidence of format 1 on the same sample, and the spread of
NDCG@10 over ALS initialisation seeds (the noise floor any target must clear).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import MOVIELENS, report
from features.build_features import build_features_from_file
from features.confidence import ConfidenceConfig
from features.feature_set import FeatureSet
from vrmodels.model.ranking.als import AlsRanking
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.als import TrainParams
from vrmodels.training.evaluation import BASELINES, metrics_table
from vrmodels.training.options import TrainingOptions
from vrmodels.training.trainer import TrainResult, train

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = PROJECT_ROOT / "data" / "sample" / "events.csv.gz"
SAMPLE_VIDEOS = PROJECT_ROOT / "data" / "sample" / "videos.csv.gz"
SKIP_BLIND = ConfidenceConfig(completion_weight=2.0, skip_below=0.0, skip_weight=1.0, rating_weight=0.0)


def quiet_train(features: FeatureSet, params: TrainParams = TrainParams(), **options: object) -> TrainResult:
    """`train` with TrainingOptions(**options), its log kept off stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return train(features, params, TrainingOptions(**options))  # type: ignore[arg-type]


def bundled_sample() -> None:
    features = build_features_from_file(SAMPLE, videos=SAMPLE_VIDEOS)
    result = quiet_train(features)
    metrics = result.metrics
    print(f"split: {result.trained.manifest.evaluation.holdout}")
    kind = result.trained.manifest.kind  # the shipped model's: "sequential" for a sequence-aware one
    print(metrics_table({name: metrics[name] for name in (kind, "als", *BASELINES)}))
    shipped, als, trending = metrics[kind], metrics["als"], metrics["trending"]
    report(f"sample, time split: shipped ({kind}) NDCG@10", shipped["ndcg"], "")
    report("sample, time split: ALS alone NDCG@10", als["ndcg"], "")
    report("sample, time split: trending NDCG@10", trending["ndcg"], "")
    report("sample, time split: shipped / ALS alone", shipped["ndcg"] / als["ndcg"], "×", "target ≥ 2")
    report("sample, time split: shipped / trending", shipped["ndcg"] / trending["ndcg"], "×", "target ≥ 2")
    report("sample, fresh uploads: shipped NDCG@10", shipped["ndcg_fresh"], "")
    report("sample, fresh uploads: ALS alone NDCG@10", als["ndcg_fresh"], "")
    report("sample, fresh uploads: trending NDCG@10", trending["ndcg_fresh"], "")
    report(
        "sample, fresh uploads: shipped / trending",
        shipped["ndcg_fresh"] / trending["ndcg_fresh"], "×", "target ≥ 2",
    )  # fmt: skip
    ranker = result.trained.ranker
    importances = ranker.importances() if ranker is not None else {}
    print(
        "ranker importances (share of gain):", ", ".join(f"{name} {value:.2f}" for name, value in importances.items())
    )

    plain = build_features_from_file(SAMPLE)
    default = quiet_train(plain, split="user")
    blind = quiet_train(plain.with_confidence(SKIP_BLIND), allow_worse=True, split="user")
    print(f"relevance: {default.relevance.describe()}")
    metrics = default.metrics
    print(metrics_table({"ALS default": metrics["als"], "ALS skip-blind": blind.metrics["als"],
                         **{name: metrics[name] for name in BASELINES if name in metrics}}))  # fmt: skip
    report("sample, per-user split: ALS NDCG@10 default", metrics["als"]["ndcg"], "")
    report("sample, per-user split: ALS NDCG@10 skip-blind confidence", blind.metrics["als"]["ndcg"], "")
    report("sample, per-user split: most-popular (clicks) NDCG@10", metrics["most_popular"]["ndcg"], "")
    report("sample, per-user split: most-watched NDCG@10", metrics["most_watched"]["ndcg"], "")
    report(
        "sample, per-user split: default / most-popular",
        metrics["als"]["ndcg"] / metrics["most_popular"]["ndcg"], "×", "target ≥ 5",
    )  # fmt: skip


def movielens(tune_trials: int) -> None:
    if not MOVIELENS.exists():
        print(f"skipped MovieLens-100K: {MOVIELENS} not found")
        return
    features = build_features_from_file(MOVIELENS, "movielens")
    default = quiet_train(features)
    seeds = [quiet_train(features, TrainParams(seed=seed)).metrics[AlsRanking.kind]["ndcg"] for seed in range(1, 6)]
    started = time.perf_counter()
    tuned = quiet_train(features, tune=True, tune_trials=tune_trials)
    tune_seconds = time.perf_counter() - started
    baselines = {name: default.metrics[name] for name in BASELINES if name in default.metrics}
    print(metrics_table({"default ALS": default.metrics["als"], "tuned ALS": tuned.metrics["als"], **baselines}))
    report("MovieLens-100K: NDCG@10 default", default.metrics["als"]["ndcg"], "", "target ≥ 0.18")
    report(f"MovieLens-100K: NDCG@10 --tune ({tune_trials} trials)", tuned.metrics["als"]["ndcg"], "", "target ≥ 0.20")
    report("MovieLens-100K: NDCG@10 most-popular", default.metrics["most_popular"]["ndcg"], "")
    report("MovieLens-100K: default NDCG@10, ALS seeds 1-5: min", min(seeds), "")
    report("MovieLens-100K: default NDCG@10, ALS seeds 1-5: max", max(seeds), "")
    report("MovieLens-100K: --tune wall time", tune_seconds, "s")
    print(f"tuned: {tuned.params}, {tuned.confidence}")

    with_items = build_features_from_file(MOVIELENS, "movielens", videos=MOVIELENS.with_name("u.item"))
    for test_days, ranker in ((7, "auto"), (30, "auto"), (30, "on")):
        result = quiet_train(with_items, allow_worse=True, test_days=test_days, ranker=ranker)
        shipped = result.metrics[result.trained.manifest.kind]
        name = result.trained.manifest.kind if result.trained.ranker is not None else "ALS (too few positives)"
        setup = f"MovieLens-100K + u.item, {test_days} test days, --ranker {ranker}"
        report(f"{setup}: {name}", shipped["ndcg"], "")
        report(f"{setup}: ALS alone", result.metrics["als"]["ndcg"], "")
        report(f"{setup}: trending", result.metrics["trending"]["ndcg"], "")
        report(
            f"{setup}: shipped / ALS alone",
            shipped["ndcg"] / result.metrics["als"]["ndcg"], "×", "target ≥ 1",
        )  # fmt: skip


BAD_INPUTS = {
    "negative video_duration": "u1,v1,100,view,30,-60\n",
    "missing video_duration with watch_seconds": "u1,v1,100,view,30,\n",
    "unknown event name": "u1,v1,100,view,30,60\nu1,v2,101,dislike,,\n",
}


def bad_input() -> None:
    header = "user_id,video_id,timestamp,event,watch_seconds,video_duration\n"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, rows in BAD_INPUTS.items():
            events = root / "events.csv"
            events.write_text(header + rows)
            _outcome(name, _run("features.build_features", str(events), "--out", str(root / name)), root / name)
        good = root / "good.csv"
        good.write_text(header + "u1,v1,100,view,30,60\nu1,v2,101,view,50,60\nu2,v1,102,view,60,60\n")
        _run("features.build_features", str(good), "--out", str(root / "features"))
        models = root / "models"
        result = _run(
            "vrmodels.train_model", "--features", str(root / "features"), "--models-root", str(models),
            "--relevant-completion", "1.5",
        )  # fmt: skip
        _outcome("relevance threshold 1.5", result, models)


def _outcome(name: str, result: subprocess.CompletedProcess, output: Path) -> None:
    written = "something" if output.exists() else "nothing"
    print(f"{name:<45} exit {result.returncode}, wrote {written}: {result.stderr.strip()}")


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=PROJECT_ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-movielens", action="store_true")
    parser.add_argument("--tune-trials", type=int, default=50)
    args = parser.parse_args()
    limit_blas_threads()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    bundled_sample()
    if not args.skip_movielens:
        movielens(args.tune_trials)
    bad_input()


if __name__ == "__main__":
    main()
