"""Every environment variable the server reads, with its default, in one place.

| variable | default | meaning |
|---|---|---|
| `SAGEMAKER_BIND_TO_PORT` | 8080 | port to listen on (0.0.0.0) |
| `SAGEMAKER_MODEL_SERVER_WORKERS` | CPU count | uvicorn worker processes |
| `SAGEMAKER_MODEL_SERVER_TIMEOUT` | 60 (600 with `SAGEMAKER_BATCH`) | seconds a request may take before a 504 |
| `SAGEMAKER_MAX_PAYLOAD_IN_MB` | 6 | request body limit (413 above it) |
| `SAGEMAKER_MAX_CONCURRENT_TRANSFORMS` | workers | reported by /execution-parameters |
| `SAGEMAKER_BATCH_STRATEGY` | MULTI_RECORD | reported by /execution-parameters |
| `SAGEMAKER_BATCH` | false | a Batch Transform job: no per-request line limit, answers streamed in slices |
| `SAGEMAKER_MULTI_MODEL` | false | multi-model mode: models loaded and unloaded through /models (SageMaker sets it) |
| `VR_MULTI_MODEL_ROOT` | /opt/ml/models | where multi-model mode may load models from (SageMaker unpacks them there) |
| `VR_MULTI_MODEL_MEMORY_MB` | 80% of the container's memory | the models' files this server maps at most (507 above) |
| `VR_OPT_ML` | /opt/ml | SageMaker's root; the model is looked for in `<root>/model` |
| `VR_MODEL_DIR` | artifacts/models/latest | model used when `<root>/model` holds none |
| `VR_GRACEFUL_SHUTDOWN_SECONDS` | 20 | how long SIGTERM waits for in-flight requests |
| `VR_LOG_LEVEL` | INFO | log level of the JSON logs |
| `VR_MAX_RESPONSE_MB` | 6 | largest answer a request may ask for (413 above it, before any scoring) |
| `VR_WORKER_USER` | (none) | when started as root, workers drop to this user (the image sets `vr`) |
| `VR_BATCH_WAIT_MS` | 2 | longest a scoring request waits for others to join its batch |
| `VR_VARIANT` | local | the production variant this container serves (a metric dimension; deploy.sh sets it) |
| `VR_ANN` | on | use the model's ANN indexes when it has them (`off`: score exactly) |
| `VR_ANN_CANDIDATES` | 200 | candidates fetched from the ANN index per query, re-ranked exactly |
| `VR_ANN_EF_SEARCH` | 200 | HNSW search breadth (raised to the pool size when smaller): recall against speed |
| `VR_MAX_BATCH` | 64 | most queries scored in one batch |
"""

from __future__ import annotations

import math
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from vrmodels.model.artifacts import is_model_dir
from vrmodels.model.booleans import parse_bool
from vrmodels.model.catalogue import DEFAULT_POOL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "artifacts" / "models" / "latest"


@dataclass(frozen=True)
class Settings:
    port: int = 8080
    workers: int = 1
    timeout_seconds: float = 60.0
    max_payload_mb: float = 6.0
    max_concurrent_transforms: int = 1
    batch_strategy: str = "MULTI_RECORD"
    opt_ml: Path = Path("/opt/ml")
    fallback_model_dir: Path = DEFAULT_MODEL_DIR
    graceful_shutdown_seconds: float = 20.0
    log_level: str = "INFO"
    batch_wait_ms: float = 2.0
    max_batch: int = 64
    max_response_mb: float = 6.0
    worker_user: str = ""
    variant: str = "local"
    use_ann: bool = True
    ann_candidates: int = DEFAULT_POOL
    ann_ef_search: int = DEFAULT_POOL
    batch: bool = False
    multi_model: bool = False
    multi_model_root: Path = Path("/opt/ml/models")
    multi_model_memory_mb: float = 1024.0

    @property
    def multi_model_memory_bytes(self) -> int:
        return int(self.multi_model_memory_mb * 1024 * 1024)

    @property
    def max_response_bytes(self) -> int:
        return int(self.max_response_mb * 1024 * 1024)

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)

    @property
    def model_dir(self) -> Path:
        """`<opt_ml>/model` when SageMaker put a model there, else the configured fallback."""
        sagemaker_dir = self.opt_ml / "model"
        return sagemaker_dir if is_model_dir(sagemaker_dir) else self.fallback_model_dir

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        workers = _positive_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1)
        batch = _switch(env, "SAGEMAKER_BATCH", False)
        return cls(
            port=_positive_int(env, "SAGEMAKER_BIND_TO_PORT", 8080),
            workers=workers,
            # Batch Transform's InvocationsTimeoutInSeconds defaults to 600
            timeout_seconds=_positive_float(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 600.0 if batch else 60.0),
            max_payload_mb=_positive_float(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6.0),
            max_concurrent_transforms=_positive_int(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", workers),
            batch_strategy=env.get("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD"),
            opt_ml=Path(env.get("VR_OPT_ML", "/opt/ml")),
            fallback_model_dir=Path(env.get("VR_MODEL_DIR", str(DEFAULT_MODEL_DIR))),
            graceful_shutdown_seconds=_positive_float(env, "VR_GRACEFUL_SHUTDOWN_SECONDS", 20.0),
            log_level=env.get("VR_LOG_LEVEL", "INFO").upper(),
            batch_wait_ms=_non_negative_float(env, "VR_BATCH_WAIT_MS", 2.0),
            max_batch=_positive_int(env, "VR_MAX_BATCH", 64),
            max_response_mb=_positive_float(env, "VR_MAX_RESPONSE_MB", 6.0),
            worker_user=env.get("VR_WORKER_USER", "").strip(),
            variant=env.get("VR_VARIANT", "").strip() or "local",
            use_ann=_switch(env, "VR_ANN", True),
            ann_candidates=_positive_int(env, "VR_ANN_CANDIDATES", DEFAULT_POOL),
            ann_ef_search=_positive_int(env, "VR_ANN_EF_SEARCH", DEFAULT_POOL),
            batch=batch,
            multi_model=_switch(env, "SAGEMAKER_MULTI_MODEL", False),
            multi_model_root=Path(env.get("VR_MULTI_MODEL_ROOT", "/opt/ml/models")),
            multi_model_memory_mb=_positive_float(env, "VR_MULTI_MODEL_MEMORY_MB", 0.8 * memory_limit_mb()),
        )


def worker_account(worker_user: str) -> tuple[int, int] | None:
    """The uid and gid the workers switch to: only when started as root with VR_WORKER_USER set (otherwise the
    process is already unprivileged and has no right to switch)."""
    if not worker_user or os.geteuid() != 0:
        return None
    try:
        account = pwd.getpwnam(worker_user)
    except KeyError:
        raise ValueError(f"environment variable VR_WORKER_USER={worker_user!r}: no such user") from None
    return account.pw_uid, account.pw_gid


def memory_limit_mb() -> float:
    """The memory this container may use: its cgroup's limit (v2, then v1), else the machine's."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 2**60:  # "max", or v1's "no limit" (a page-rounded 2**63)
            return int(raw) / 2**20
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def _switch(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_bool(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} must be on or off (true or false)") from None


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a whole number") from None
    if value <= 0:
        raise ValueError(f"environment variable {name}={raw!r} must be positive")
    return value


def _positive_float(env: dict[str, str], name: str, default: float) -> float:
    return _float(env, name, default, allow_zero=False)


def _non_negative_float(env: dict[str, str], name: str, default: float) -> float:
    return _float(env, name, default, allow_zero=True)


def _float(env: dict[str, str], name: str, default: float, allow_zero: bool) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"environment variable {name}={raw!r} must be {'≥ 0' if allow_zero else 'positive'}")
    return value
