"""Model quality benchmarks: the realistic bundled sample, MovieLens-100K, and the bad-input contract.

    python -m bench.quality [--skip-movielens] [--tune-trials 50]

Targets (issue 8):
- bundled sample, default parameters: ALS NDCG@10 (satisfying-watch relevance) ≥ 5× most-popular;
- MovieLens-100K (per-user temporal 80/20): default NDCG@10 ≥ 0.18, --tune ≥ 0.20;
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
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.als import TrainParams
from vrmodels.training.evaluation import BASELINES, metrics_table
from vrmodels.training.trainer import TrainResult, train

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = PROJECT_ROOT / "data" / "sample" / "events.csv.gz"
SKIP_BLIND = ConfidenceConfig(completion_weight=2.0, skip_below=0.0, skip_weight=1.0, rating_weight=0.0)


def quiet_train(*args: object, **kwargs: object) -> TrainResult:
    with contextlib.redirect_stdout(io.StringIO()):
        return train(*args, **kwargs)


def bundled_sample() -> None:
    features = build_features_from_file(SAMPLE)
    default = quiet_train(features)
    blind = quiet_train(features.with_confidence(SKIP_BLIND), allow_worse=True)
    print(f"relevance: {default.relevance.describe()}")
    metrics = default.metrics
    print(metrics_table({"ALS default": metrics["als"], "ALS skip-blind": blind.metrics["als"],
                         **{name: metrics[name] for name in BASELINES}}))  # fmt: skip
    report("sample: ALS NDCG@10 default", metrics["als"]["ndcg"], "")
    report("sample: ALS NDCG@10 skip-blind confidence (format-1 formula)", blind.metrics["als"]["ndcg"], "")
    report("sample: most-popular (clicks) NDCG@10", metrics["most_popular"]["ndcg"], "")
    report("sample: most-watched (engagement, the fallback) NDCG@10", metrics["most_watched"]["ndcg"], "")
    report(
        "sample: default / most-popular", metrics["als"]["ndcg"] / metrics["most_popular"]["ndcg"], "×", "target ≥ 5"
    )
    report("sample: default / most-watched", metrics["als"]["ndcg"] / metrics["most_watched"]["ndcg"], "×")


def movielens(tune_trials: int) -> None:
    if not MOVIELENS.exists():
        print(f"skipped MovieLens-100K: {MOVIELENS} not found")
        return
    features = build_features_from_file(MOVIELENS, "movielens")
    default = quiet_train(features)
    seeds = [quiet_train(features, TrainParams(seed=seed)).metrics["als"]["ndcg"] for seed in range(1, 6)]
    started = time.perf_counter()
    tuned = quiet_train(features, tune_trials=tune_trials)
    tune_seconds = time.perf_counter() - started
    print(metrics_table({"default ALS": default.metrics["als"], "tuned ALS": tuned.metrics["als"],
                         **{name: default.metrics[name] for name in BASELINES}}))  # fmt: skip
    report("MovieLens-100K: NDCG@10 default", default.metrics["als"]["ndcg"], "", "target ≥ 0.18")
    report(f"MovieLens-100K: NDCG@10 --tune ({tune_trials} trials)", tuned.metrics["als"]["ndcg"], "", "target ≥ 0.20")
    report("MovieLens-100K: NDCG@10 most-popular", default.metrics["most_popular"]["ndcg"], "")
    report("MovieLens-100K: default NDCG@10, ALS seeds 1-5: min", min(seeds), "")
    report("MovieLens-100K: default NDCG@10, ALS seeds 1-5: max", max(seeds), "")
    report("MovieLens-100K: --tune wall time", tune_seconds, "s")
    print(f"tuned: {tuned.params}, {tuned.confidence}")


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
