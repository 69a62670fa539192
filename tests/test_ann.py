"""Approximate top-k through faiss: close to exact, filtered like exact, exact when filters empty the pool."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import numpy as np
import pytest
from implicit.cpu.topk import topk
from scipy.sparse import random as sparse_random

from bench.synthetic import random_model
from features.build_features import build_features
from tests.asking import recommend
from vrmodels.model.artifacts import ModelArtifactError, load_model_dir
from vrmodels.model.queries import Query, SimilarQuery
from vrmodels.model.recommend import Recommender, ScoringOptions
from vrmodels.model.topk import filtered_topk
from vrmodels.train_model import main as train_main
from vrmodels.training.aids import build_ann

USERS, VIDEOS, FACTORS = 2000, 3000, 16


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return random_model(
        tmp_path_factory.mktemp("ann") / "model", USERS, VIDEOS, FACTORS, watched=20, topn=50, ann_mode="on"
    )


@pytest.fixture(scope="module")
def approximate(model_dir) -> Recommender:
    return Recommender.load(model_dir)


@pytest.fixture(scope="module")
def exact(model_dir) -> Recommender:
    return Recommender.load(model_dir, ScoringOptions(use_ann=False))


def users(count: int) -> list[str]:
    return [f"u{i:04d}" for i in np.random.default_rng(2).choice(USERS, count, replace=False)]


def overlap(first: list[str], second: list[str]) -> float:
    return len(set(first) & set(second)) / len(second)


def test_the_model_carries_memory_mapped_indexes_that_match_its_factors(model_dir, approximate, exact):
    artifacts = load_model_dir(model_dir)
    assert artifacts.ann is not None and artifacts.ann.inner_product.ntotal == VIDEOS
    assert artifacts.manifest.serving.ann["built"] is True
    assert approximate.approximate and not exact.approximate


def test_recall_at_10_against_exact_scoring(approximate, exact):
    queries = [Query(user, 10, exclude_watched=False) for user in users(300)]  # scored in full, no top-N lists
    found = approximate.rank(queries)
    truth = exact.rank(queries)
    assert np.mean([overlap(a.video_ids, t.video_ids) for a, t in zip(found, truth)]) >= 0.95


def test_answers_are_re_ranked_by_exact_scores_and_respect_the_filters(model_dir, approximate):
    artifacts = load_model_dir(model_dir)
    for user in users(50):
        index = artifacts.users.index_of(user)
        watched = set(artifacts.videos.ids_of(artifacts.user_items[index].indices))
        exclude = approximate.rank([Query(user, 3)])[0].video_ids
        answer = approximate.rank([Query(user, 10, exclude=exclude)])[0]
        assert not set(answer.video_ids) & (watched | set(exclude))
        indices = [artifacts.videos.index_of(video) for video in answer.video_ids]
        expected = artifacts.item_factors[indices] @ artifacts.user_factors[index]
        np.testing.assert_allclose(answer.scores, expected, rtol=1e-5)
        assert answer.scores == sorted(answer.scores, reverse=True)


def test_when_filters_leave_fewer_than_k_in_the_pool_the_answer_is_exact(model_dir, exact):
    small_pool = Recommender.load(model_dir, ScoringOptions(ann_candidates=20, ann_ef_search=20))
    for user in users(20):
        best = exact.rank([Query(user, 30, exclude_watched=False)])[0].video_ids
        query = Query(user, 10, exclude_watched=False, exclude=best[:15])  # a pool of 20 loses most of itself
        assert small_pool.rank([query])[0].video_ids == exact.rank([query])[0].video_ids


def test_fold_ins_and_similar_videos_go_through_the_indexes_too(approximate, exact):
    histories = [Query(f"new-{n}", 10, history=[f"v{(n * 97 + j) % VIDEOS:04d}" for j in range(5)]) for n in range(100)]
    folded = np.mean(
        [overlap(a.video_ids, t.video_ids) for a, t in zip(approximate.rank(histories), exact.rank(histories))]
    )
    similar = [SimilarQuery(f"v{n * 29 % VIDEOS:04d}", 10) for n in range(100)]
    alike = np.mean([overlap(a.video_ids, t.video_ids) for a, t in zip(approximate.rank(similar), exact.rank(similar))])
    assert folded >= 0.9 and alike >= 0.9


def test_precomputed_lists_hold_what_the_ann_path_serves(approximate):
    for user in users(100):
        query = Query(user, 10)
        quick = approximate.lookup(query)
        assert quick is not None and quick.video_ids == approximate.rank([query])[0].video_ids


def test_an_index_of_another_model_is_refused_naming_the_file(model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    other = build_ann(np.random.default_rng(9).normal(size=(VIDEOS - 1, FACTORS)).astype(np.float32))
    other.save(tmp_path)
    for name in ("ann_inner_product.faiss", "ann_cosine.faiss"):
        shutil.copy(tmp_path / name, copy / name)
        manifest = json.loads((copy / "manifest.json").read_text())
        content = (copy / name).read_bytes()
        manifest["files"][name] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ModelArtifactError, match=r"ann_inner_product\.faiss: indexes 2999 vectors of 16 dimensions, the model has 3000"
    ):
        load_model_dir(copy)


def test_ann_on_with_a_tiny_catalogue_trains_says_so_and_serves_exactly(tmp_path, sample_events, caplog):
    caplog.set_level(logging.INFO)
    build_features(sample_events).save(tmp_path / "features")
    args = ["--features", str(tmp_path / "features"), "--models-root", str(tmp_path / "models"), "--ann", "on"]
    assert train_main([*args, "--factors", "16", "--regularization", "5", "--iterations", "10"]) == 0
    assert "ANN skipped: 80 videos are too few for an index (from 1000); scoring stays exact" in caplog.messages
    model = Recommender.load(tmp_path / "models" / "latest")
    assert not model.approximate and len(recommend(model, "u001", 5).video_ids) == 5


def test_filtered_top_k_answers_as_implicits_top_k_with_the_csr_filter():
    """filtered_topk hands implicit each row's filtered indices without scipy's row indexing: same answers."""
    rng = np.random.default_rng(3)
    items = rng.standard_normal((500, 8)).astype(np.float32)
    queries = rng.standard_normal((250, 8)).astype(np.float32)  # more than implicit's batch of 100: its threads too
    filters = sparse_random(250, 500, density=0.05, format="csr", random_state=4)
    ids, scores = filtered_topk(items, queries, 20, filters=filters)
    expected_ids, expected_scores = topk(items, queries, 20, filter_query_items=filters)
    assert np.array_equal(ids, expected_ids) and np.array_equal(scores, expected_scores)
    assert not any(np.isin(ids[row], filters[row].indices).any() for row in range(250))
