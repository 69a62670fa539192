"""A trained model's evaluation as a registry reads it: a few named figures, and where they come from.

The training job logs each figure as `[metric] NAME=VALUE`, which SageMaker turns into training metrics through
the MetricDefinitions below; deploy/register.sh puts the same figures into the Model Package's metadata and its
evaluation report (ModelMetrics), so the retrain pipeline's gate and a person approving a package read the same
numbers.

    python -m vrmodels.training.registry manifest.json          # the evaluation report (JSON)
    python -m vrmodels.training.registry --metric-definitions   # SageMaker's MetricDefinitions (JSON)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from vrmodels.model.manifest import Manifest, ManifestError, Versus

METRIC_LINE = "[metric] {name}={value:.6f}"
JUDGEMENTS = ("home", "in_session", "up_next")


def figures(manifest: Manifest) -> dict[str, float]:
    """NDCG@k of the shipped model and of its best baseline, per judgement the model has."""
    headline = manifest.headline()
    found: dict[str, float] = {}
    for judgement in JUDGEMENTS:
        versus: Versus | None = getattr(headline, judgement)
        if versus is None:
            continue
        if versus.ndcg is not None:
            found[f"ndcg_{judgement}"] = versus.ndcg
        if versus.best_baseline_ndcg is not None:
            found[f"best_baseline_ndcg_{judgement}"] = versus.best_baseline_ndcg
    return found


def metric_lines(manifest: Manifest) -> list[str]:
    return [METRIC_LINE.format(name=name, value=value) for name, value in figures(manifest).items()]


def metric_definitions() -> list[dict[str, str]]:
    """One per figure any model may have, matching metric_lines."""
    names = [f"{prefix}{judgement}" for judgement in JUDGEMENTS for prefix in ("ndcg_", "best_baseline_ndcg_")]
    prefix = re.escape(METRIC_LINE.split("{name}")[0])
    return [{"Name": name, "Regex": f"{prefix}{name}=([0-9.eE+-]+)"} for name in names]


def evaluation_report(manifest: Manifest) -> dict:
    """What a reviewer of the package reads: the headline figures, the split, and every model's and baseline's
    metrics per judgement."""
    return {
        "model_version": manifest.model_version,
        "kind": manifest.kind,
        "k": manifest.evaluation.k,
        "split": manifest.evaluation.split,
        "figures": figures(manifest),
        "home": manifest.metrics,
        **manifest.judgements,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", nargs="?", type=Path, help="a model directory's manifest.json")
    parser.add_argument("--metric-definitions", action="store_true")
    args = parser.parse_args(argv)
    if args.metric_definitions:
        print(json.dumps(metric_definitions()))
        return 0
    if args.manifest is None:
        parser.error("give a manifest.json or --metric-definitions")
    try:
        manifest = Manifest.read(args.manifest)
    except (OSError, ManifestError) as error:
        print(f"registry: {error}", file=sys.stderr)
        return 2
    print(json.dumps(evaluation_report(manifest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
