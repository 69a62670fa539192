"""`python -m vrmodels.package MODEL_DIR OUT.tar.gz`: verify a model directory and package it for SageMaker."""

from __future__ import annotations

import sys
from pathlib import Path

from vrmodels.model.artifacts import ModelArtifactError, package_model_dir


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        archive = package_model_dir(Path(argv[0]), Path(argv[1]))
    except ModelArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
