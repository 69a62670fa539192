"""Model directories edited as other trainers would have written them: older formats, re-signed bad arrays."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from vrmodels.model import sessions
from vrmodels.model.artifacts import MANIFEST_FILE, UP_NEXT_FILES, load_model_dir


def downgrade(directory, version: int, drop: tuple[str, ...]) -> None:
    """Make `directory` look as an older trainer wrote it: without the files that format did not have (the session
    tables before format 6, the up-next lists before format 7), and with JSON id lists instead of id indexes before
    format 4."""
    artifacts = load_model_dir(directory, mmap=False)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    if version < 7 and UP_NEXT_FILES[0] in manifest["files"]:
        drop = (*drop, *UP_NEXT_FILES)
        manifest["serving"].pop("up_next")
    if version < 6:
        drop = (*drop, *sessions.FILES)
        manifest.pop("sessions")
    for name in drop:
        (directory / name).unlink()
        del manifest["files"][name]
    if version < 4:
        for name, index in (("user_ids", artifacts.users), ("video_ids", artifacts.videos)):
            for suffix in (".npy", "_order.npy"):
                (directory / f"{name}{suffix}").unlink()
                del manifest["files"][f"{name}{suffix}"]
            (directory / f"{name}.json").write_text(json.dumps(index.all_ids()))
            manifest["files"][f"{name}.json"] = signature(directory / f"{name}.json")
    manifest["format_version"] = version
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


def signature(path) -> dict:
    return {"bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def rewrite(directory, name: str, array: np.ndarray) -> None:
    """Replace one array and re-sign the manifest, as a buggy trainer would: checksums pass, content does not."""
    np.save(directory / name, array)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["files"][name] = signature(directory / name)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
