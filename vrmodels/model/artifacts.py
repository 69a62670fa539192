"""The model directory format: what is in it, how it is written, and how it is checked on load.

A model directory holds

    manifest.json        format version, model version, created time, parameters, data statistics,
                         metrics of ALS and the baselines, and size + sha256 of every file
    user_factors.npy     float32 users × factors   (memory-mappable, shared by server workers)
    item_factors.npy     float32 videos × factors  (memory-mappable)
    user_items_indptr.npy, user_items_indices.npy, user_items_data.npy
                         CSR users × videos confidences (memory-mappable): filters watched videos, drives fold-in
    popularity.npy       float32 per video: the fallback ranking (format 2 on: engagement, the sum of confidence;
                         format 1: distinct users)
    user_ids.npy, user_ids_order.npy, video_ids.npy, video_ids_order.npy
                         the id ↔ index maps (format 4 on; memory-mapped and shared, see vrmodels.model.ids);
                         formats 1-3 have user_ids.json and video_ids.json (position = index) instead
    evaluation.html, evaluation.png
                         the evaluation report (format 2 on, optional: the PNG needs matplotlib)
    topn.npy             int32 users × N: each known user's best unwatched videos, best first, -1 padded
                         (format 3 on, optional; memory-mapped, see vrmodels.model.topn)
    ann_inner_product.faiss, ann_cosine.faiss
                         HNSW indexes for approximate top-k over large catalogues (format 4 on, optional;
                         memory-mapped, see vrmodels.model.ann)
    video_*.npy, trending.npy, channel_fresh_*.npy, category_fresh_*.npy
                         the catalogue tables: channels, categories, publication, the ranker's video features,
                         as of the data end (format 5 on, with a catalogue; see vrmodels.model.videos)
    ranker.txt, topn_scores.npy
                         the learned second stage (LightGBM text format) and each precomputed list's ranker scores
                         (format 5 on, optional; see vrmodels.model.ranking)
    next_*.npy, user_recent.npy, user_items_seen.npy
                         the watched-next table and the users' last sittings (format 6 on, optional; see
                         vrmodels.model.sessions)
    up_next.npy, up_next_scores.npy
                         int32 videos × N and their scores: each video's up next for anyone, best first, -1 padded
                         (format 7 on, optional, for a model that ranks up next; memory-mapped, see
                         vrmodels.model.topn)

Format history: 1 the core files; 2 adds the report, the confidence parameters and the relevance definition
to the manifest; 3 adds the precomputed top-N lists; 4 replaces the JSON id lists by shared id indexes and adds
the ANN indexes; 5 adds the catalogue tables and the ranker; 6 adds the session tables and the in-session and
up-next judgements; 7 adds the precomputed up-next lists. Every version listed in REQUIRED_FILES still loads.
The loader never writes to the directory: SageMaker mounts `/opt/ml/model` read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from vrmodels.model import ann, sessions
from vrmodels.model import videos as video_tables
from vrmodels.model.ann import AnnIndexError, AnnIndexes
from vrmodels.model.ids import IdIndex, IdIndexError
from vrmodels.model.lightgbm_ranker import RANKER_FILE, LightGBMRanker, RankerError
from vrmodels.model.manifest import FORMAT_VERSION, MANIFEST_FILE, READABLE_VERSIONS, FileEntry, Manifest, ManifestError
from vrmodels.model.sessions import SessionTables, SessionTablesError
from vrmodels.model.videos import VideoTables, VideoTablesError

USER_FACTORS_FILE = "user_factors.npy"
ITEM_FACTORS_FILE = "item_factors.npy"
USER_ITEMS_FILES = {
    "indptr": "user_items_indptr.npy",
    "indices": "user_items_indices.npy",
    "data": "user_items_data.npy",
}
POPULARITY_FILE = "popularity.npy"
USER_IDS, VIDEO_IDS = "user_ids", "video_ids"
ID_INDEX_FILES = (f"{USER_IDS}.npy", f"{USER_IDS}_order.npy", f"{VIDEO_IDS}.npy", f"{VIDEO_IDS}_order.npy")
ID_JSON_FILES = (f"{USER_IDS}.json", f"{VIDEO_IDS}.json")  # formats 1-3
REPORT_HTML_FILE = "evaluation.html"
REPORT_PNG_FILE = "evaluation.png"
TOPN_FILE = "topn.npy"
TOPN_SCORES_FILE = "topn_scores.npy"
UP_NEXT_FILES = ("up_next.npy", "up_next_scores.npy")
ARRAY_FILES = (USER_FACTORS_FILE, ITEM_FACTORS_FILE, *USER_ITEMS_FILES.values(), POPULARITY_FILE)
REPORT_FILES = (REPORT_HTML_FILE, REPORT_PNG_FILE)
# Per format version (vrmodels.model.manifest.READABLE_VERSIONS): the files it must have, and those it may have.
REQUIRED_FILES = {
    1: (*ARRAY_FILES, *ID_JSON_FILES),
    2: (*ARRAY_FILES, *ID_JSON_FILES),
    3: (*ARRAY_FILES, *ID_JSON_FILES),
    4: (*ARRAY_FILES, *ID_INDEX_FILES),
    5: (*ARRAY_FILES, *ID_INDEX_FILES),
    6: (*ARRAY_FILES, *ID_INDEX_FILES),
    7: (*ARRAY_FILES, *ID_INDEX_FILES),
}
OPTIONAL_FILES = {
    1: (),
    2: REPORT_FILES,
    3: (*REPORT_FILES, TOPN_FILE),
    4: (*REPORT_FILES, TOPN_FILE, *ann.FILES),
    5: (*REPORT_FILES, TOPN_FILE, *ann.FILES, *video_tables.FILES, RANKER_FILE, TOPN_SCORES_FILE),
    6: (*REPORT_FILES, TOPN_FILE, *ann.FILES, *video_tables.FILES, RANKER_FILE, TOPN_SCORES_FILE, *sessions.FILES),
    7: (*REPORT_FILES, TOPN_FILE, *ann.FILES, *video_tables.FILES, RANKER_FILE, TOPN_SCORES_FILE, *sessions.FILES)
    + UP_NEXT_FILES,
}
DATA_FILES = REQUIRED_FILES[FORMAT_VERSION]


class ModelArtifactError(RuntimeError):
    """A model directory that cannot be served; the message names the directory and the file."""


@dataclass
class ModelArtifacts:
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_items: csr_matrix
    popularity: np.ndarray
    user_ids: IdIndex | Sequence[str]
    """Ids by index; a sequence is indexed on construction (duplicates and NUL characters are refused)."""
    video_ids: IdIndex | Sequence[str]
    manifest: Manifest
    """What the trainer knows; written with the format version, the time and the files' checksums added."""
    reports: dict[str, bytes] = field(default_factory=dict)
    """Optional report files (name → content), written and checksummed with the rest."""
    topn: np.ndarray | None = None
    """Optional precomputed top-N lists (see vrmodels.model.topn)."""
    ann: AnnIndexes | None = None
    """Optional ANN indexes (see vrmodels.model.ann)."""
    tables: VideoTables | None = None
    """Optional catalogue tables (see vrmodels.model.videos); the manifest's `catalogue` entry describes them."""
    ranker: LightGBMRanker | None = None
    """Optional second stage (needs the tables; see vrmodels.model.ranking.twostage)."""
    topn_scores: np.ndarray | None = None
    """The ranker's score of each precomputed video (with a ranker and top-N lists)."""
    sessions: SessionTables | None = None
    """Optional watched-next table and users' last sittings (see vrmodels.model.sessions)."""
    up_next: np.ndarray | None = None
    """Optional precomputed up next of every video, for anyone (with the sessions; see vrmodels.model.topn)."""
    up_next_scores: np.ndarray | None = None
    """The ranker's score of each video of `up_next` (both or neither)."""
    directory: Path | None = None
    """Where it was loaded from (None before it is written)."""

    def __post_init__(self) -> None:
        for name in ("user_ids", "video_ids"):
            value = getattr(self, name)
            if not isinstance(value, IdIndex):
                try:
                    setattr(self, name, IdIndex.build(value))
                except IdIndexError as exc:
                    raise ModelArtifactError(f"{name}: {exc}") from None

    @property
    def users(self) -> IdIndex:
        return self.user_ids  # type: ignore[return-value]  (an IdIndex after __post_init__)

    @property
    def videos(self) -> IdIndex:
        return self.video_ids  # type: ignore[return-value]


def write_model_dir(artifacts: ModelArtifacts, directory: Path | str) -> Path:
    """Write every file, then the manifest with their checksums, into a new or empty directory.

    Files are staged and moved in at the end, so a failed write leaves nothing behind.
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ModelArtifactError(f"{directory}: not empty; model directories are never overwritten")
    # Stage on the target's own filesystem: inside it when it already exists (it may be a mount point, such
    # as SageMaker's /opt/ml/model), beside it otherwise; renames never cross devices.
    existing = directory.exists()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=directory if existing else directory.parent))
    try:
        np.save(staging / USER_FACTORS_FILE, np.ascontiguousarray(artifacts.user_factors, dtype=np.float32))
        np.save(staging / ITEM_FACTORS_FILE, np.ascontiguousarray(artifacts.item_factors, dtype=np.float32))
        user_items = csr_matrix(artifacts.user_items, dtype=np.float32)
        user_items.sort_indices()
        for part, name in USER_ITEMS_FILES.items():
            np.save(staging / name, getattr(user_items, part))
        np.save(staging / POPULARITY_FILE, artifacts.popularity.astype(np.float32))
        names = [*ARRAY_FILES, *artifacts.users.save(staging, USER_IDS), *artifacts.videos.save(staging, VIDEO_IDS)]
        unknown = set(artifacts.reports) - set(REPORT_FILES)
        if unknown:
            raise ModelArtifactError(f"{directory}: {', '.join(sorted(unknown))} is not part of the model format")
        for name, content in artifacts.reports.items():
            (staging / name).write_bytes(content)
            names.append(name)
        if artifacts.topn is not None:
            np.save(staging / TOPN_FILE, np.ascontiguousarray(artifacts.topn, dtype=np.int32))
            names.append(TOPN_FILE)
        if artifacts.ann is not None:
            names += artifacts.ann.save(staging)
        if artifacts.tables is not None:
            names += artifacts.tables.save(staging)
        if artifacts.ranker is not None:
            names.append(artifacts.ranker.save(staging))
        if artifacts.topn_scores is not None:
            np.save(staging / TOPN_SCORES_FILE, np.ascontiguousarray(artifacts.topn_scores, dtype=np.float32))
            names.append(TOPN_SCORES_FILE)
        if artifacts.sessions is not None:
            names += artifacts.sessions.save(staging)
        if (artifacts.up_next is None) != (artifacts.up_next_scores is None):
            raise ModelArtifactError(f"{directory}: {' and '.join(UP_NEXT_FILES)} are written together or not at all")
        if artifacts.up_next is not None:
            for name, array, dtype in zip(
                UP_NEXT_FILES, (artifacts.up_next, artifacts.up_next_scores), ("int32", "float32")
            ):
                np.save(staging / name, np.ascontiguousarray(array, dtype=dtype))
            names += UP_NEXT_FILES
        manifest = artifacts.manifest.model_copy(
            update={
                "format_version": FORMAT_VERSION,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": {name: _describe(staging / name) for name in names},
            }
        )
        (staging / MANIFEST_FILE).write_text(manifest.to_json())
        os.chmod(staging, 0o755)
        if existing:
            for name in (*names, MANIFEST_FILE):  # the manifest last: it vouches for the rest
                (staging / name).rename(directory / name)
            staging.rmdir()
        else:
            staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def is_model_dir(directory: Path | str) -> bool:
    """True when `directory` holds a model (a manifest), e.g. one SageMaker extracted into /opt/ml/model."""
    return (Path(directory) / MANIFEST_FILE).is_file()


def read_manifest(directory: Path | str) -> Manifest:
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise ModelArtifactError(f"{path}: missing; is {directory} a model directory written by vrmodels.train_model?")
    try:
        manifest = Manifest.read(path)
    except ManifestError as exc:
        raise ModelArtifactError(str(exc)) from None
    version = manifest.format_version
    if version not in READABLE_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise ModelArtifactError(f"{path}: format_version {version!r}, this code reads {readable}")
    files = manifest.files
    required, optional = set(REQUIRED_FILES[version]), set(OPTIONAL_FILES[version])
    if not required <= set(files) <= required | optional:
        raise ModelArtifactError(
            f"{path}: 'files' must list {', '.join(sorted(required))}"
            + (f", and may list {', '.join(sorted(optional))}" if optional else "")
        )
    return manifest


def verify_model_dir(directory: Path | str) -> Manifest:
    """Check every file against the manifest (presence, size, sha256); return the manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    for name, expected in manifest.files.items():
        path = directory / name
        if not path.is_file():
            raise ModelArtifactError(f"{path}: missing (listed in {MANIFEST_FILE})")
        size = path.stat().st_size
        if size != expected.bytes:
            raise ModelArtifactError(f"{path}: {size} bytes, manifest says {expected.bytes} (truncated or replaced?)")
        if _sha256(path) != expected.sha256:
            raise ModelArtifactError(f"{path}: sha256 does not match {MANIFEST_FILE} (corrupted or replaced)")
    return manifest


def load_model_dir(directory: Path | str, mmap: bool = True) -> ModelArtifacts:
    """Verify and load; the arrays are memory-mapped so several processes share one copy in the page cache.

    The map is copy-on-write ("c"), not read-only: implicit's Cython solvers demand writable buffers,
    though they never write to them, so the pages stay shared and the files untouched.
    """
    directory = Path(directory)
    manifest = verify_model_dir(directory)
    files = manifest.files
    mode = "c" if mmap else None
    try:
        if manifest.format_version >= 4:
            user_ids, video_ids = (IdIndex.load(directory, name, mmap) for name in (USER_IDS, VIDEO_IDS))
        else:
            user_ids, video_ids = (IdIndex.build(json.loads((directory / name).read_text())) for name in ID_JSON_FILES)
        parts = {part: np.load(directory / name, mmap_mode=mode) for part, name in USER_ITEMS_FILES.items()}
        item_factors = np.load(directory / ITEM_FACTORS_FILE, mmap_mode=mode)
        artifacts = ModelArtifacts(
            user_factors=np.load(directory / USER_FACTORS_FILE, mmap_mode=mode),
            item_factors=item_factors,
            user_items=_csr(parts, (len(user_ids), len(video_ids)), directory),
            popularity=np.load(directory / POPULARITY_FILE, mmap_mode=mode),
            user_ids=user_ids,
            video_ids=video_ids,
            manifest=manifest,
            topn=np.load(directory / TOPN_FILE, mmap_mode="r" if mmap else None) if TOPN_FILE in files else None,
            directory=directory,
        )
        if _all_or_none(ann.FILES, files, directory):
            artifacts.ann = AnnIndexes.load(directory, len(video_ids), item_factors.shape[1], mmap=mmap)
        if _all_or_none(video_tables.FILES, files, directory):
            if manifest.catalogue is None:
                raise ModelArtifactError(f"{directory / MANIFEST_FILE}: catalogue tables without a 'catalogue' entry")
            artifacts.tables = VideoTables.load(directory, manifest.catalogue, len(video_ids), mmap=mmap)
        if RANKER_FILE in files:
            if artifacts.tables is None:
                raise ModelArtifactError(f"{directory / RANKER_FILE}: a ranker needs the catalogue tables")
            artifacts.ranker = LightGBMRanker.load(directory)
        if _all_or_none(sessions.FILES, files, directory):
            shape = (len(user_ids), len(video_ids), len(artifacts.user_items.indices))
            artifacts.sessions = SessionTables.load(
                directory, users=shape[0], videos=shape[1], pairs=shape[2], mmap=mmap
            )
        if TOPN_SCORES_FILE in files:
            if artifacts.topn is None or artifacts.ranker is None:
                raise ModelArtifactError(f"{directory / TOPN_SCORES_FILE}: needs {TOPN_FILE} and {RANKER_FILE}")
            artifacts.topn_scores = np.load(directory / TOPN_SCORES_FILE, mmap_mode="r" if mmap else None)
        if _all_or_none(UP_NEXT_FILES, files, directory):
            artifacts.up_next, artifacts.up_next_scores = (
                np.load(directory / name, mmap_mode="r" if mmap else None) for name in UP_NEXT_FILES
            )
    except (AnnIndexError, IdIndexError, VideoTablesError, RankerError, SessionTablesError) as exc:
        raise ModelArtifactError(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise ModelArtifactError(f"{directory}: a file matches its checksum but cannot be read: {exc}") from exc
    users, videos = len(user_ids), len(video_ids)
    shapes = {
        USER_FACTORS_FILE: (artifacts.user_factors.shape[0], users),
        ITEM_FACTORS_FILE: (artifacts.item_factors.shape[0], videos),
        POPULARITY_FILE: (artifacts.popularity.shape[0], videos),
    }
    if artifacts.topn is not None:
        shapes[TOPN_FILE] = (artifacts.topn.shape[0], users)
    if artifacts.up_next is not None:
        shapes[UP_NEXT_FILES[0]] = (artifacts.up_next.shape[0], videos)
    for name, (rows, expected) in shapes.items():
        if rows != expected:
            raise ModelArtifactError(f"{directory / name}: {rows} rows, id maps say {expected}")
    if artifacts.user_factors.shape[1] != artifacts.item_factors.shape[1]:
        raise ModelArtifactError(
            f"{directory / ITEM_FACTORS_FILE}: {artifacts.item_factors.shape[1]} factors, "
            f"{USER_FACTORS_FILE} has {artifacts.user_factors.shape[1]}"
        )
    if artifacts.topn is not None:
        _check_topn(artifacts.topn, videos, directory / TOPN_FILE)
    if artifacts.topn_scores is not None and artifacts.topn_scores.shape != artifacts.topn.shape:  # type: ignore[union-attr]
        raise ModelArtifactError(f"{directory / TOPN_SCORES_FILE}: shape {artifacts.topn_scores.shape} is not topn's")
    lists, scores = artifacts.up_next, artifacts.up_next_scores
    if lists is not None and scores is not None:
        _check_topn(lists, videos, directory / UP_NEXT_FILES[0])
        if scores.shape != lists.shape:
            raise ModelArtifactError(
                f"{directory / UP_NEXT_FILES[1]}: shape {scores.shape} is not {UP_NEXT_FILES[0]}'s"
            )
    return artifacts


def _all_or_none(group: tuple[str, ...], files: dict, directory: Path) -> bool:
    """Whether the manifest lists a group of files that only work together; refused when it lists a part."""
    listed = [name for name in group if name in files]
    if listed and len(listed) < len(group):
        raise ModelArtifactError(f"{directory / MANIFEST_FILE}: lists {listed[0]} without {set(group) - set(listed)}")
    return bool(listed)


def _check_topn(lists: np.ndarray, videos: int, path: Path) -> None:
    if lists.ndim != 2 or lists.dtype != np.int32:
        raise ModelArtifactError(f"{path}: expected a 2-D int32 array, got {lists.ndim}-D {lists.dtype}")
    if lists.size and (lists.min() < -1 or lists.max() >= videos):
        raise ModelArtifactError(f"{path}: video indices outside 0..{videos - 1}")


def _csr(parts: dict[str, np.ndarray], shape: tuple[int, int], directory: Path) -> csr_matrix:
    """A CSR over the mapped arrays as they are (no copy), after checking they fit together."""
    indptr, indices, data = (np.asarray(parts[p]) for p in ("indptr", "indices", "data"))
    if len(indptr) != shape[0] + 1 or indptr[-1] != len(indices) or len(indices) != len(data):
        raise ModelArtifactError(
            f"{directory / USER_ITEMS_FILES['indptr']}: CSR arrays do not fit {shape[0]} users "
            f"(indptr {len(indptr)}, indices {len(indices)}, data {len(data)})"
        )
    matrix = csr_matrix(shape, dtype=np.float32)
    matrix.indptr, matrix.indices, matrix.data = indptr, indices, data
    matrix.has_sorted_indices = True
    return matrix


def package_model_dir(directory: Path | str, archive: Path | str) -> Path:
    """Write `model.tar.gz` with the files at its root, the layout SageMaker extracts into /opt/ml/model."""
    directory, archive = Path(directory), Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    manifest = verify_model_dir(directory)
    with tarfile.open(archive, "w:gz") as tar:
        for name in (MANIFEST_FILE, *manifest.files):
            tar.add(directory / name, arcname=name)
    return archive


def _describe(path: Path) -> FileEntry:
    return FileEntry(bytes=path.stat().st_size, sha256=_sha256(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
