"""The endpoint config that follows the current one when a variant changes model: one rule for
deploy/traffic.sh (--promote, --rollback) and the retrain pipeline's rollout (deploy/pipeline_steps.py).

The kept variant keeps its name, instances and settings and takes all traffic; data capture and shadow
variants carry over; the new config is tagged as ours, so the scripts that refuse foreign endpoints accept it.

    python -m deploy.rollout CONFIG.json --keep VARIANT [--model-from VARIANT] --name NAME --project P
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path

MANAGED_BY = {"Key": "managed-by", "Value": "vr-deploy"}
CARRIED_OVER = ("DataCaptureConfig", "ShadowProductionVariants")


def successor_config(config: dict, *, keep: str, model_name: str, name: str, project: str) -> dict:
    """A CreateEndpointConfig request: `config`'s variant `keep` alone, serving `model_name`."""
    variants = {variant["VariantName"]: variant for variant in config["ProductionVariants"]}
    if keep not in variants:
        raise KeyError(f"endpoint config {config.get('EndpointConfigName')} has no variant {keep!r}")
    kept = {key: value for key, value in variants[keep].items() if key not in ("CurrentWeight", "DesiredWeight")}
    kept["ModelName"] = model_name
    kept["InitialVariantWeight"] = 1.0
    successor = {
        "EndpointConfigName": name,
        "ProductionVariants": [kept],
        "Tags": [{"Key": "project", "Value": project}, MANAGED_BY],
    }
    successor.update({key: config[key] for key in CARRIED_OVER if config.get(key)})
    return successor


def unique_stamp() -> str:
    """As deploy/common.sh's unique_stamp: orders names by creation time, keeps two in the same second apart."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="the current config, as describe-endpoint-config prints it")
    parser.add_argument("--keep", required=True, help="the variant that stays")
    parser.add_argument("--model-from", help="the variant whose model it serves (default: its own)")
    parser.add_argument("--name", required=True, help="the new config's name")
    parser.add_argument("--project", required=True)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    models = {variant["VariantName"]: variant["ModelName"] for variant in config["ProductionVariants"]}
    for variant in (args.keep, args.model_from or args.keep):
        if variant not in models:
            print(f"rollout: {args.config} has no variant {variant!r} (it has {', '.join(models)})", file=sys.stderr)
            return 1
    successor = successor_config(
        config, keep=args.keep, model_name=models[args.model_from or args.keep], name=args.name, project=args.project
    )
    print(json.dumps(successor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
