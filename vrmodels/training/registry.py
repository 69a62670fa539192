"""A trained model's evaluation as a registry reads it: a few named figures, and where they come from.

The training job logs each figure as `[metric] NAME=VALUE`, which SageMaker turns into training metrics through
the MetricDefinitions below; deploy/register.sh puts the same figures into the Model Package's metadata and its
evaluation report (ModelMetrics), so the retrain pipeline's gate and a person approving a package read the same
numbers.

    python -m vrmodels.training.registry manifest.json          # the evaluation report (JSON)
    python -m vrmodels.training.registry model.tar.gz --out DIR # the same, read from a training job's archive,
                                                                # written to DIR/evaluation.json (the pipeline's
                                                                # Evaluate step, deploy/pipeline.py)
    python -m vrmodels.training.registry --metric-definitions   # SageMaker's MetricDefinitions (JSON)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from pathlib import Path

from vrmodels.model.manifest import MANIFEST_FILE, Manifest, ManifestError, Versus

METRIC_LINE = "[metric] {name}={value:.6f}"
JUDGEMENTS = ("home", "in_session", "up_next")
REPORT_NAME = "evaluation.json"


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


def read_manifest(path: Path) -> Manifest:
    """A manifest.json, or the one at the root of a model archive (model.tar.gz, as training jobs write it)."""
    if not path.name.endswith((".tar.gz", ".tgz")):
        return Manifest.read(path)
    try:
        with tarfile.open(path) as archive:
            member = archive.extractfile(MANIFEST_FILE)
            text = member.read() if member else b""
    except KeyError:
        raise ManifestError(f"{path}: no {MANIFEST_FILE} at its root") from None
    except tarfile.TarError as error:
        raise ManifestError(f"{path}: not a readable model archive ({error})") from None
    return Manifest.parse(text, source=f"{path}:{MANIFEST_FILE}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", nargs="?", type=Path, help="a model directory's manifest.json, or model.tar.gz")
    parser.add_argument("--out", type=Path, help=f"write DIR/{REPORT_NAME} instead of printing the report")
    parser.add_argument("--metric-definitions", action="store_true")
    args = parser.parse_args(argv)
    if args.metric_definitions:
        print(json.dumps(metric_definitions()))
        return 0
    if args.manifest is None:
        parser.error("give a manifest.json, a model.tar.gz or --metric-definitions")
    try:
        report = json.dumps(evaluation_report(read_manifest(args.manifest)))
    except (OSError, ManifestError) as error:
        print(f"registry: {error}", file=sys.stderr)
        return 2
    if args.out is None:
        print(report)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / REPORT_NAME).write_text(report)
        print(f"registry: wrote {args.out / REPORT_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
