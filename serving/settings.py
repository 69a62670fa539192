"""Every setting the server reads, declared once: its environment variable, default, bound and meaning.

`Settings` is a pydantic-settings model: each field names its environment variable (SageMaker's where one
exists), its default (or how the default is derived), its bound and what it means. The server reads its settings
through it alone; a bad value stops it with an error naming the variable and what it takes; README.md's and
docs/serving.md's tables are `table()`'s rows (a test holds them to it).
"""

from __future__ import annotations

import math
import os
import pwd
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from vrmodels.model import opt_ml
from vrmodels.model.artifacts import is_model_dir
from vrmodels.model.booleans import parse_bool
from vrmodels.model.topk import DEFAULT_POOL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "artifacts" / "models" / "latest"
SHOWN = "shown"  # a field's json_schema_extra key: its default as the tables show it, when derived


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


def _switch(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return parse_bool(raw)
    except ValueError:
        raise ValueError("must be on or off (true or false)") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _stripped(raw: Any) -> Any:
    return raw.strip() if isinstance(raw, str) else raw


Switch = Annotated[bool, BeforeValidator(_switch)]
Number = Annotated[float, AfterValidator(_finite)]
Text = Annotated[str, BeforeValidator(_stripped)]


def setting(default: Any = None, *, env: str, meaning: str, shown: str | None = None, factory: Any = None, **bound):
    """A field read from environment variable `env`; `shown` is its default as the tables show it (when the
    default is derived by `factory`, from the settings declared before it)."""
    extra = {SHOWN: shown} if shown else None
    if factory is not None:
        return Field(
            default_factory=factory, validation_alias=env, description=meaning, json_schema_extra=extra, **bound
        )
    return Field(default, validation_alias=env, description=meaning, json_schema_extra=extra, **bound)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, frozen=True, populate_by_name=True)

    port: int = setting(8080, env="SAGEMAKER_BIND_TO_PORT", meaning="listening port on 0.0.0.0", gt=0, lt=65536)
    workers: int = setting(
        env="SAGEMAKER_MODEL_SERVER_WORKERS",
        meaning="worker processes; the model is memory-mapped and shared between them",
        shown="CPU count",
        factory=lambda: os.cpu_count() or 1,
        gt=0,
    )
    batch: Switch = setting(
        False,
        env="SAGEMAKER_BATCH",
        meaning="a Batch Transform job (SageMaker sets it): any number of lines per request within the payload "
        "limit, streamed",
    )
    timeout_seconds: Number = setting(
        env="SAGEMAKER_MODEL_SERVER_TIMEOUT",
        meaning="seconds before a request gets 504",
        shown="60 (600 with `SAGEMAKER_BATCH`)",
        factory=lambda data: 600.0 if data["batch"] else 60.0,  # Batch Transform's InvocationsTimeoutInSeconds
        gt=0,
    )
    max_payload_mb: Number = setting(
        6.0, env="SAGEMAKER_MAX_PAYLOAD_IN_MB", meaning="body limit: 413 above it, checked before parsing", gt=0
    )
    max_concurrent_transforms: int = setting(
        env="SAGEMAKER_MAX_CONCURRENT_TRANSFORMS",
        meaning="reported by `GET /execution-parameters`",
        shown="workers",
        factory=lambda data: data["workers"],
        gt=0,
    )
    batch_strategy: Text = setting(
        "MULTI_RECORD", env="SAGEMAKER_BATCH_STRATEGY", meaning="reported by `GET /execution-parameters`"
    )
    multi_model: Switch = setting(
        False,
        env="SAGEMAKER_MULTI_MODEL",
        meaning="multi-model mode (SageMaker sets it): models loaded through `/models`",
    )
    multi_model_root: Path = setting(
        Path("/opt/ml/models"),
        env="VR_MULTI_MODEL_ROOT",
        meaning="multi-model mode loads only from under this directory",
    )
    multi_model_memory_mb: Number = setting(
        env="VR_MULTI_MODEL_MEMORY_MB",
        meaning="the model files multi-model mode maps at most: 507 above it",
        shown="80% of the container's memory",
        factory=lambda: 0.8 * memory_limit_mb(),
        gt=0,
    )
    fallback_model_dir: Path = setting(
        DEFAULT_MODEL_DIR,
        env="VR_MODEL_DIR",
        meaning="the model when `/opt/ml/model` holds none",
        shown="`artifacts/models/latest` (of the project)",
    )
    opt_ml: Path = setting(opt_ml.DEFAULT, env=opt_ml.VARIABLE, meaning="SageMaker's root (tests point it elsewhere)")
    graceful_shutdown_seconds: Number = setting(
        20.0,
        env="VR_GRACEFUL_SHUTDOWN_SECONDS",
        meaning="SIGTERM waits this long for in-flight requests (SageMaker kills at 30 s)",
        gt=0,
    )
    log_level: Text = setting("INFO", env="VR_LOG_LEVEL", meaning="level of the JSON logs on stdout")
    max_response_mb: Number = setting(
        6.0,
        env="VR_MAX_RESPONSE_MB",
        meaning="largest answer one request may ask for: 413 above it, before any scoring",
        gt=0,
    )
    worker_user: Text = setting(
        "",
        env="VR_WORKER_USER",
        meaning="when started as root, workers switch to this user",
        shown="(none; the image: `vr`)",
    )
    batch_wait_ms: Number = setting(
        2.0,
        env="VR_BATCH_WAIT_MS",
        meaning="longest a scoring query waits for others to join its batch (0: never wait)",
        ge=0,
    )
    max_batch: int = setting(64, env="VR_MAX_BATCH", meaning="most queries in one scoring call", gt=0)
    use_ann: Switch = setting(
        True, env="VR_ANN", meaning="`off` scores every query exactly even when the model has ANN indexes", shown="`on`"
    )
    ann_candidates: int = setting(
        DEFAULT_POOL,
        env="VR_ANN_CANDIDATES",
        meaning="ANN candidate pool per query (at least 2k), re-ranked exactly",
        gt=0,
    )
    ann_ef_search: int = setting(
        DEFAULT_POOL,
        env="VR_ANN_EF_SEARCH",
        meaning="HNSW search breadth (faiss `efSearch`; at least the pool): higher is slower and closer to exact",
        gt=0,
    )
    metrics_interval_seconds: Number = setting(
        60.0,
        env="VR_METRICS_INTERVAL_SECONDS",
        meaning="each worker publishes its request metrics (EMF lines on stdout) this often, and at shutdown",
        gt=0,
        le=60,
    )
    access_log_sample: Number = setting(
        0.01,
        env="VR_ACCESS_LOG_SAMPLE",
        meaning="share of requests that get an access line (every 5xx does; 4xx at most one a second)",
        ge=0,
        le=1,
    )
    variant: Text = setting(
        "local",
        env="VR_VARIANT",
        meaning="the production variant's name, a dimension of every metric (`deploy.sh` sets it)",
    )

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
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of `env` (default: this process's environment); ValueError naming the variable at fault."""
        try:
            if env is None:
                return cls()
            return cls.model_validate({name: value for name, value in env.items() if value.strip()})
        except ValidationError as exc:
            raise ValueError(_explain(exc)) from None


def table() -> list[str]:
    """The settings as Markdown table rows, header first: `| variable | default | meaning |`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in Settings.model_fields.values():
        shown = (field.json_schema_extra or {}).get(SHOWN)  # type: ignore[union-attr]
        rows.append(f"| `{field.validation_alias}` | {shown or _shown(field.default)} | {field.description} |")
    return rows


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return "`on`" if default else "`off`"
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, int):
        return str(default)
    return f"`{default}`" if str(default) else "(none)"


_PROBLEMS = {  # pydantic's error type → what the variable must be
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "greater_than": "must be positive",
    "greater_than_equal": "must be ≥ 0",
    "less_than": "must be below {lt}",
    "less_than_equal": "must be at most {le}",
}


def _explain(exc: ValidationError) -> str:
    """pydantic's first error, as the sentence that names the variable and what it takes."""
    error = exc.errors(include_url=False)[0]
    if error["type"] == "value_error":
        problem = error["msg"].removeprefix("Value error, ")
    else:
        problem = _PROBLEMS.get(error["type"], error["msg"]).format(**error.get("ctx", {}))
    return f"environment variable {error['loc'][0]}={error.get('input')!r} {problem}"


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
