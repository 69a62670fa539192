"""SageMaker's side of a multi-model endpoint, for sagemaker_local.runtime (a local-testing tool).

On an invocation with a TargetModel, SageMaker makes sure the model is loaded in the container before it
forwards: the first time, it downloads `<ModelDataUrl prefix><TargetModel>` from S3, unpacks it under the
container's /opt/ml/models/<name>/model and asks the container to load it (POST /models); when the container
answers 507 (no memory left), it unloads the least recently used model (DELETE /models/<name>) and tries again.
The name is opaque (a digest of the target), as SageMaker's is. Standard library and boto3's S3 client.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from pathlib import Path


class TargetModelError(Exception):
    """What SageMaker answers itself (HTTP status, error type, message); for a ModelError, the status is the
    container's, which SageMaker passes on as OriginalStatusCode."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class ModelHost:
    def __init__(self, container: str, model_data_url: str, models_dir: Path, s3: object, root: str = "/opt/ml/models"):
        """`models_dir` is the host directory the container sees as `root` (SageMaker's /opt/ml/models)."""
        if not model_data_url.startswith("s3://") or not model_data_url.endswith("/"):
            raise ValueError(f"{model_data_url}: a multi-model ModelDataUrl is an S3 prefix ending in /")
        self.container = container.rstrip("/")
        self.bucket, _, self.prefix = model_data_url[len("s3://") :].partition("/")
        self.models_dir = models_dir
        self.root = root.rstrip("/")
        self.s3 = s3
        self._loaded: OrderedDict[str, str] = OrderedDict()  # name → target, least recently used first
        self.loads = 0
        self.evictions = 0  # unloads after a 507
        self._lock = threading.Lock()

    def invoke_url(self, target: str) -> str:
        """The container URL that invokes `target`, loaded first when it is not (raises TargetModelError)."""
        if not target or target.startswith("/") or ".." in target.split("/"):
            raise TargetModelError(400, "ValidationError", f"TargetModel {target!r} is not a path under the prefix")
        name = hashlib.sha256(target.encode()).hexdigest()[:32]
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
            else:
                self._unpack(target, name)
                self._load(target, name)
                self._loaded[name] = target
                self.loads += 1
        return f"{self.container}/models/{name}/invoke"

    def loaded(self) -> list[str]:
        """The targets loaded, least recently used first."""
        with self._lock:
            return list(self._loaded.values())

    def _unpack(self, target: str, name: str) -> None:
        key = self.prefix + target
        try:
            data = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as error:  # botocore's NoSuchKey and friends
            raise TargetModelError(
                400, "ValidationError", f"Failed to download model data (bucket: {self.bucket}, key: {key}): {error}"
            ) from None
        directory = self.models_dir / name / "model"
        shutil.rmtree(directory.parent, ignore_errors=True)
        directory.mkdir(parents=True)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                archive.extractall(directory, filter="data")
        except (tarfile.TarError, OSError) as error:
            raise TargetModelError(400, "ValidationError", f"{target}: not a model.tar.gz ({error})") from None
        for path in (directory.parent, directory, *directory.rglob("*")):  # the container's workers are not root
            path.chmod(0o755 if path.is_dir() else 0o644)

    def _load(self, target: str, name: str) -> None:
        body = json.dumps({"model_name": name, "url": f"{self.root}/{name}/model"}).encode()
        while True:
            status, message = _call("POST", f"{self.container}/models", body)
            if status in (200, 409):
                return
            if status == 507 and self._loaded:
                evicted, _ = self._loaded.popitem(last=False)
                self.evictions += 1
                _call("DELETE", f"{self.container}/models/{evicted}")
                shutil.rmtree(self.models_dir / evicted, ignore_errors=True)
                continue
            shutil.rmtree(self.models_dir / name, ignore_errors=True)
            raise TargetModelError(status, "ModelError", f"loading {target} failed: {message}")


def _call(method: str, url: str, body: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=360) as answer:  # SageMaker waits up to 360 s for a load
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as failure:
        return failure.code, failure.read().decode("utf-8", "replace")
