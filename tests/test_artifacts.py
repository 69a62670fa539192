import json
import shutil
import tarfile

import numpy as np
import pytest

from tests.asking import recommend, similar
from tests.model_files import downgrade, rewrite
from vrmodels.model import sessions
from vrmodels.model.artifacts import (
    DATA_FILES,
    MANIFEST_FILE,
    ModelArtifactError,
    load_model_dir,
    package_model_dir,
    write_model_dir,
)
from vrmodels.model.manifest import FORMAT_VERSION
from vrmodels.model.recommend import Recommender


@pytest.fixture
def model_copy(tmp_path, model_dir):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def test_manifest_records_parameters_data_metrics_and_checksums(model_dir):
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 7
    assert manifest["model_version"] == model_dir.name
    assert set(manifest["parameters"]) == {"factors", "regularization", "alpha", "iterations", "seed"}
    assert set(manifest["confidence"]) == {
        "event_weights", "completion_weight", "skip_below", "skip_weight", "rating_weight", "scaling"
    }  # fmt: skip
    assert set(manifest["metrics"]) == {"als", "most_popular", "most_watched"}
    assert manifest["evaluation"]["relevance"]["kind"] == "satisfying_watch"
    assert len(manifest["evaluation"]["curves"]["als"]["ndcg"]) == 50
    assert manifest["data"]["features"]["dropped"]["duplicate_events"] >= 0
    assert set(manifest["files"]) == {*DATA_FILES, "evaluation.html", "evaluation.png", "topn.npy", *sessions.FILES}
    assert manifest["sessions"]["gap_minutes"] == 30 and manifest["sessions"]["followers"] == 50
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())


def test_the_evaluation_report_names_its_metrics_and_relevance(model_dir):
    page = (model_dir / "evaluation.html").read_text()
    for words in ("NDCG@k and recall@k, k = 1..50", "ndcg@10", "recall@10", "coverage@10", "popular_share@10"):
        assert words in page
    assert "satisfying watches: completion ≥ 0.8 or a complete/like/share event" in page
    assert '<img src="evaluation.png"' in page
    assert (model_dir / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("version", "drop"),
    [(1, ("evaluation.html", "evaluation.png", "topn.npy")), (2, ("topn.npy",)), (3, ()), (4, ())],
)
def test_older_format_directories_still_load_and_answer_the_same(model_copy, model_dir, version, drop):
    downgrade(model_copy, version, drop)
    artifacts = load_model_dir(model_copy)
    assert artifacts.manifest.format_version == version
    assert (artifacts.topn is None) == ("topn.npy" in drop)
    old, new = Recommender(artifacts), Recommender.load(model_dir)
    for user in ("u001", "u002", "someone-new"):
        assert recommend(old, user, 5).video_ids == recommend(new, user, 5).video_ids
    # Without a watched-next table, up next is factor similarity alone.
    video = new.ranking.topk.similar(np.asarray([4]), 3)[0][0]  # v005
    assert similar(old, "v005", 3).video_ids == [f"v{index + 1:03d}" for index in video]


def test_a_format_2_directory_may_not_list_topn(model_copy):
    downgrade(model_copy, 2, ())
    with pytest.raises(ModelArtifactError, match=r"manifest\.json: 'files' must list .*, and may list evaluation"):
        load_model_dir(model_copy)


def test_topn_lists_are_memory_mapped_and_checked_against_the_model(model_copy):
    lists = load_model_dir(model_copy).topn
    assert isinstance(lists, np.memmap) and lists.dtype == np.int32
    bad = np.array(lists)
    bad[0, 0] = 10_000_000
    rewrite(model_copy, "topn.npy", bad)
    with pytest.raises(ModelArtifactError, match=r"topn\.npy: video indices outside 0\.\.79"):
        load_model_dir(model_copy)
    rewrite(model_copy, "topn.npy", np.array(lists)[:-1])
    with pytest.raises(ModelArtifactError, match=r"topn\.npy: 399 rows, id maps say 400"):
        load_model_dir(model_copy)


def test_factor_counts_of_users_and_videos_must_agree(model_copy):
    rewrite(model_copy, "item_factors.npy", np.zeros((80, 3), dtype=np.float32))
    with pytest.raises(ModelArtifactError, match=r"item_factors\.npy: 3 factors, user_factors\.npy has 16"):
        load_model_dir(model_copy)


def test_latest_points_at_the_new_version(model_dir):
    assert (model_dir.parent / "latest").resolve() == model_dir.resolve()


def test_arrays_load_memory_mapped_so_workers_share_them(model_dir):
    artifacts = load_model_dir(model_dir)
    assert isinstance(artifacts.item_factors, np.memmap)
    assert isinstance(artifacts.user_factors, np.memmap)
    for part in (artifacts.user_items.indptr, artifacts.user_items.indices, artifacts.user_items.data):
        assert isinstance(part.base, np.memmap)


def test_corrupted_file_fails_its_checksum(model_copy):
    path = model_copy / "item_factors.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelArtifactError, match=r"item_factors\.npy: sha256 does not match manifest\.json"):
        load_model_dir(model_copy)


def test_truncated_file_is_reported_with_sizes(model_copy):
    path = model_copy / "user_items_indices.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelArtifactError, match=r"user_items_indices\.npy: 100 bytes, manifest says \d+ \(truncated"):
        load_model_dir(model_copy)


def test_missing_file_is_named(model_copy):
    (model_copy / "video_ids.npy").unlink()
    with pytest.raises(ModelArtifactError, match=r"video_ids\.npy: missing"):
        load_model_dir(model_copy)


def test_missing_manifest_says_what_the_directory_should_be(tmp_path):
    with pytest.raises(ModelArtifactError, match=r"manifest\.json: missing"):
        load_model_dir(tmp_path)


def test_newer_format_version_is_refused(model_copy):
    manifest = json.loads((model_copy / MANIFEST_FILE).read_text())
    manifest["format_version"] = 99
    (model_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match="format_version 99, this code reads 1, 2, 3, 4, 5, 6, 7"):
        load_model_dir(model_copy)


def test_package_puts_files_at_the_archive_root(tmp_path, model_dir):
    archive = package_model_dir(model_dir, tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(
            [MANIFEST_FILE, *DATA_FILES, "evaluation.html", "evaluation.png", "topn.npy", *sessions.FILES]
        )
        tar.extractall(tmp_path / "opt-ml-model", filter="data")
    assert load_model_dir(tmp_path / "opt-ml-model").manifest.model_version == model_dir.name


def test_writing_into_an_existing_empty_directory_stages_inside_it(tmp_path, model_dir):
    """SageMaker's /opt/ml/model exists (often as a mount): staging beside it would cross devices."""
    artifacts = load_model_dir(model_dir, mmap=False)
    target = tmp_path / "model"
    target.mkdir()
    write_model_dir(artifacts, target)
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [MANIFEST_FILE, *DATA_FILES, "topn.npy", *sessions.FILES]
    )  # no reports
    assert load_model_dir(target).manifest.model_version == model_dir.name


def test_writing_into_a_non_empty_directory_is_refused(tmp_path, model_dir):
    with pytest.raises(ModelArtifactError, match="not empty; model directories are never overwritten"):
        write_model_dir(load_model_dir(model_dir, mmap=False), model_dir)
