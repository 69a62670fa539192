"""The models a multi-model server has loaded, shared by all its workers through one directory.

SageMaker sends each load, unload and list to whichever worker accepts the connection, and every worker must
then answer for the same set of models. The registry is that set: one small JSON file per model in a directory
the gunicorn master creates before it forks (so every worker knows where it is), changed only under an
exclusive file lock, each change bumping a generation counter that workers poll.

- A load *claims* its name first (409 when it is loaded or being loaded; 507 when the sizes of the models
  loaded and being loaded would exceed the memory budget), then loads, then *commits* the entry or *abandons*
  the claim: nothing stays half-loaded, and a claim whose worker died is void.
- Each worker marks every model it has mapped with a file named by its pid (*hold*), and removes the mark when
  the model's memory is released. An unload removes the entry, then waits until no living worker holds the
  model: its 200 means the memory is released everywhere.

Names are opaque to the registry (SageMaker's are hashes); files are named by a digest of the name.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from serving.errors import Conflict, InsufficientStorage


@dataclass(frozen=True)
class Entry:
    name: str
    url: str
    size_bytes: int
    """What loading it maps: the size of its files."""
    loaded_at: float
    info: dict
    """The model's description for GET /info (serving.models.LoadedModel.info)."""


class Registry:
    def __init__(self, directory: Path):
        self.directory = directory
        self._models, self._claims, self._held = directory / "models", directory / "claims", directory / "held"

    @classmethod
    def create(cls, owner: tuple[int, int] | None = None) -> Registry:
        """A fresh, empty registry in a new private directory (owned by the workers' uid and gid when they switch
        to another user), removed when the process that created it exits."""
        directory = Path(tempfile.mkdtemp(prefix="vr-models-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
        registry = cls(directory)
        for folder in (directory, registry._models, registry._claims, registry._held):
            folder.mkdir(exist_ok=True)
            if owner is not None:
                os.chown(folder, *owner)
        creator = os.getpid()
        atexit.register(lambda: os.getpid() == creator and shutil.rmtree(directory, ignore_errors=True))
        return registry

    def generation(self) -> int:
        """Changes whenever an entry is committed or removed."""
        try:
            return int((self.directory / "generation").read_text() or 0)
        except FileNotFoundError:
            return 0

    def get(self, name: str) -> Entry | None:
        return _read_entry(self._models / _key(name))

    def count(self) -> int:
        """How many models are committed (without reading them)."""
        return sum(1 for _ in _files(self._models))

    def entries(self) -> list[Entry]:
        """Every committed model, by name."""
        found = (_read_entry(path) for path in _files(self._models))
        return sorted((entry for entry in found if entry is not None), key=lambda entry: entry.name)

    def claim(self, name: str, url: str, size_bytes: int, *, budget_bytes: int) -> None:
        """Reserve `name` for a load (raises Conflict or InsufficientStorage)."""
        with self._locked():
            if (self._models / _key(name)).exists():
                raise Conflict(f"model_name: {name!r} is already loaded; unload it first (DELETE /models/{name})")
            claims = self._live_claims()
            if any(claim["name"] == name for claim in claims):
                raise Conflict(f"model_name: {name!r} is being loaded")
            used = sum(entry.size_bytes for entry in self.entries()) + sum(claim["size_bytes"] for claim in claims)
            if used + size_bytes > budget_bytes:
                raise InsufficientStorage(
                    f"loading {name!r} ({size_bytes / 2**20:.1f} MiB) would exceed the memory budget of "
                    f"{budget_bytes / 2**20:.0f} MiB (VR_MULTI_MODEL_MEMORY_MB), {used / 2**20:.1f} MiB in use: "
                    "unload a model first"
                )
            claim = {"name": name, "url": url, "size_bytes": size_bytes, "pid": os.getpid()}
            _write_json(self._claims / _key(name), claim)

    def commit(self, entry: Entry) -> None:
        with self._locked():
            _write_json(self._models / _key(entry.name), asdict(entry))
            (self._claims / _key(entry.name)).unlink(missing_ok=True)
            self._bump()

    def abandon(self, name: str) -> None:
        with self._locked():
            (self._claims / _key(name)).unlink(missing_ok=True)

    def remove(self, name: str) -> Entry | None:
        """Take `name` out of the registry (no worker attaches it any more); None when it was not loaded."""
        with self._locked():
            path = self._models / _key(name)
            entry = _read_entry(path)
            if entry is not None:
                path.unlink()
                self._bump()
            return entry

    def hold(self, name: str) -> None:
        """Mark `name` as mapped by this process."""
        folder = self._held / _key(name)
        folder.mkdir(exist_ok=True)
        (folder / str(os.getpid())).touch()

    def release(self, name: str) -> None:
        """This process no longer maps `name`."""
        folder = self._held / _key(name)
        (folder / str(os.getpid())).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # another process holds it still
            folder.rmdir()

    def holders(self, name: str) -> list[int]:
        """The living processes that still map `name`."""
        folder = self._held / _key(name)
        if not folder.is_dir():
            return []
        return [pid for pid in (int(mark.name) for mark in folder.iterdir()) if _alive(pid)]

    def wait_released(self, name: str, timeout: float, poll: float = 0.02) -> list[int]:
        """Wait until no living process maps `name`; the pids that still do after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (holders := self.holders(name)) and time.monotonic() < deadline:
            time.sleep(poll)
        return holders

    def _live_claims(self) -> list[dict]:
        claims = []
        for path in _files(self._claims):
            claim = _read_json(path)
            if claim is None:
                continue
            if _alive(claim["pid"]):
                claims.append(claim)
            else:  # its worker died while loading
                path.unlink(missing_ok=True)
        return claims

    def _bump(self) -> None:
        _write_json(self.directory / "generation", self.generation() + 1)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _files(folder: Path) -> Iterator[Path]:
    """The committed files of a folder (not the ones _write_json is still writing)."""
    return (path for path in folder.iterdir() if not path.name.startswith("."))


def _key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:40]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


def _write_json(path: Path, value: object) -> None:
    """Readers see the old file or the new one, never a part of either."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_text(json.dumps(value))
    os.replace(staging, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _read_entry(path: Path) -> Entry | None:
    value = _read_json(path)
    return None if value is None else Entry(**value)
