"""Precomputed top-N lists answer known users exactly as full scoring would."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from tests.asking import ask
from vrmodels.model.artifacts import ModelArtifacts, write_model_dir
from vrmodels.model.manifest import Manifest
from vrmodels.model.queries import Query
from vrmodels.model.recommend import Recommender
from vrmodels.training.aids import with_serving_aids

USERS, VIDEOS, FACTORS, N = 3000, 400, 16, 20


@pytest.fixture(scope="module")
def recommender(tmp_path_factory) -> Recommender:
    """A model with random factors (so no structure hides a bug) and a user who watched all but 5 videos."""
    rng = np.random.default_rng(4)
    rows = np.repeat(np.arange(USERS), 12)
    columns = rng.integers(0, VIDEOS, size=len(rows))
    rows, columns = np.r_[rows, np.zeros(VIDEOS - 5, int)], np.r_[columns, np.arange(5, VIDEOS)]  # user 0
    user_items = csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(USERS, VIDEOS))
    user_items.data[:] = 1.0
    user_factors = rng.normal(0, 1, (USERS, FACTORS)).astype(np.float32)
    item_factors = rng.normal(0, 1, (VIDEOS, FACTORS)).astype(np.float32)
    artifacts = ModelArtifacts(
        user_factors=user_factors,
        item_factors=item_factors,
        user_items=user_items,
        popularity=np.bincount(user_items.indices, minlength=VIDEOS).astype(np.float32),
        user_ids=[f"u{i}" for i in range(USERS)],
        video_ids=[f"v{i}" for i in range(VIDEOS)],
        manifest=Manifest(model_version="random", parameters={"regularization": 1.0, "alpha": 1.0}),
    )
    directory = write_model_dir(
        with_serving_aids(artifacts, topn=N, ann="off"), tmp_path_factory.mktemp("topn") / "model"
    )
    return Recommender.load(directory)


def assert_same(quick, exact) -> None:
    assert quick.video_ids == exact.video_ids
    np.testing.assert_allclose(quick.scores, exact.scores, rtol=0, atol=1e-5)


def sample_users(count: int, seed: int) -> list[str]:
    return [f"u{i}" for i in np.random.default_rng(seed).choice(np.arange(1, USERS), count, replace=False)]


@pytest.mark.parametrize("k", [1, 7, N])
def test_precomputed_answers_equal_the_exact_path_on_random_users(recommender, k):
    for user in sample_users(200, seed=k):
        query = Query(user, k)
        quick = recommender.lookup(query)
        assert quick is not None
        assert_same(quick, recommender.rank([query])[0])


def test_with_exclude_the_precomputed_answer_still_equals_the_exact_path(recommender):
    rng = np.random.default_rng(9)
    for user in sample_users(200, seed=11):
        listed = recommender.lookup(Query(user, N)).video_ids
        exclude = [*rng.choice(listed, 3, replace=False).tolist(), f"v{rng.integers(VIDEOS)}", "not-a-video"]
        query = Query(user, 10, exclude=exclude)
        quick = recommender.lookup(query)
        assert quick is not None and not set(quick.video_ids) & set(exclude)
        assert_same(quick, recommender.rank([query])[0])


def test_excluding_too_much_of_the_list_falls_back_to_exact_scoring(recommender):
    listed = recommender.lookup(Query("u42", N)).video_ids
    query = Query("u42", 10, exclude=listed[: N - 5])  # 5 listed videos remain, 10 are asked for
    assert recommender.lookup(query) is None
    answer = ask(recommender, query)
    assert answer.video_ids[:5] == listed[N - 5 :] and len(answer.video_ids) == 10
    assert_same(answer, recommender.rank([query])[0])


def test_a_user_with_fewer_unwatched_videos_than_n_gets_exactly_those(recommender):
    quick = recommender.lookup(Query("u0", 10))
    assert quick is not None and sorted(quick.video_ids) == [f"v{i}" for i in range(5)]
    assert_same(quick, recommender.rank([Query("u0", 10)])[0])


@pytest.mark.parametrize(
    "query",
    [
        Query("u5", N + 1),
        Query("u5", 5, exclude_watched=False),
        Query("u5", 5, candidates=["v1", "v2", "v3"]),
        Query("u5", 5, history=["v1"]),
    ],
    ids=["k beyond N", "watched kept", "candidates", "history"],
)
def test_what_the_lists_cannot_answer_is_left_to_exact_scoring(recommender, query):
    assert recommender.lookup(query) is None
    assert ask(recommender, query) == recommender.rank([query])[0]
