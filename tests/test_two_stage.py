"""The catalogue-aware model: metadata factors for new uploads, the time split, the learned ranker and its lists,
and the request filters with their fallbacks. Trained for real on small generated platforms."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from features.build_features import build_features
from features.catalogue import validate_catalogue
from features.events import validate_events
from features.sample_events import generate_platform
from tests.asking import ask, recommend, similar
from tests.conftest import SMALL_PARAMS
from vrmodels.model.artifacts import ModelArtifactError, load_model_dir
from vrmodels.model.manifest import FORMAT_VERSION
from vrmodels.model.narrowing import Narrowing
from vrmodels.model.queries import Query, Recommendations, UnsupportedFilter
from vrmodels.model.ranking.base import QueryBatch
from vrmodels.model.ranking.sequential import SequentialRanking
from vrmodels.model.ranking.twostage import FEATURES, Shares
from vrmodels.model.recommend import Recommender
from vrmodels.model.videos import VIDEO_FEATURES
from vrmodels.training.holdouts import TimeSplit
from vrmodels.training.learn_ranker import MAX_ROUNDS, STOP_AFTER, Examples, _validation_users, boost
from vrmodels.training.model_dir import save_versioned, to_artifacts
from vrmodels.training.options import TrainingOptions
from vrmodels.training.relevance import Relevance
from vrmodels.training.split import DAY
from vrmodels.training.trainer import train


@pytest.fixture(scope="module")
def recommender(platform_model_dir) -> Recommender:
    return Recommender.load(platform_model_dir)


def known_users(features, count: int, seed: int = 1) -> list[str]:
    return [str(user) for user in np.random.default_rng(seed).choice(features.user_ids, count, replace=False)]


def test_the_model_carries_its_ranker_tables_and_what_the_ranker_learned(platform_model_dir, recommender):
    manifest = json.loads((platform_model_dir / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["shipped"] == "sequential"
    assert {
        "ranker.txt",
        "topn_scores.npy",
        "video_features.npy",
        "trending.npy",
        "next_videos.npy",
        "up_next.npy",
    } <= set(manifest["files"])
    names = list(SequentialRanking.features_names)
    assert manifest["ranker"]["features"] == names and set(manifest["ranker"]["importances"]) == set(names)
    assert manifest["evaluation"]["split"] == "time" and "ndcg_fresh" in manifest["metrics"]["sequential"]
    assert recommender.ranking.learned and "LightGBM lambdarank" in manifest["algorithm"]
    assert "The ranker" in (platform_model_dir / "evaluation.html").read_text()


def synthetic_examples(users: int, candidates: int = 20, signal: float = 1.0, seed: int = 0) -> Examples:
    """Candidates whose first feature predicts the one positive of each user by `signal` (0: not at all)."""
    rng = np.random.default_rng(seed)
    features = rng.random((users * candidates, len(FEATURES))).astype(np.float32)
    features[:, FEATURES.index("category")] = rng.integers(0, 5, users * candidates)
    labels = np.zeros(users * candidates, dtype=np.float32)
    labels[np.arange(users) * candidates + rng.integers(0, candidates, users)] = 1
    features[:, 0] += signal * labels * rng.random(users * candidates)
    return Examples(features, labels, np.full(users, candidates), FEATURES, 1.0)


def test_shares_split_each_query_s_confidence_by_code_and_keep_its_favourites_lower_code_first():
    """Two queries over videos of codes [0, 1, 1, -1, 2]: query 0 watched videos 0, 1, 3 (confidences 1, 1, 6;
    video 3's code unknown), query 1 videos 1, 2, 4 (2, 2, 4)."""
    codes = np.array([0, 1, 1, -1, 2])
    videos = csr_matrix(
        (np.array([1, 1, 6, 2, 2, 4], np.float32), np.array([0, 1, 3, 1, 2, 4]), np.array([0, 3, 6])), shape=(2, 5)
    )
    shares = Shares.of(videos, codes, width=3)

    assert shares.rows.tolist() == [0, 0, 1, 1] and shares.codes.tolist() == [0, 1, 1, 2]
    assert shares.values.tolist() == [0.5, 0.5, 0.5, 0.5]  # the unknown code's confidence is not counted
    assert shares.at(np.array([0, 0, 1, 1]), np.array([1, 2, -1, 2])).tolist() == [0.5, 0.0, 0.0, 0.5]
    favourite = shares.top(1)
    assert favourite.rows.tolist() == [0, 1] and favourite.codes.tolist() == [0, 1]  # ties: the lower code


def test_boosting_stops_when_held_out_users_stop_improving_and_keeps_only_the_trees_it_chose():
    booster, held_out = boost(synthetic_examples(2000, signal=0.0), seed=3)  # nothing to learn: stops at once
    assert held_out.sum() == 200
    assert booster.current_iteration() == booster.num_trees() < STOP_AFTER


def test_too_few_users_to_hold_out_learn_every_round():
    booster, held_out = boost(synthetic_examples(300), seed=3)
    assert not held_out.any() and booster.num_trees() == MAX_ROUNDS


@pytest.mark.parametrize(("users", "held_out"), [(0, 0), (10, 0), (994, 0), (1000, 100), (5000, 500)])
def test_a_tenth_of_the_learning_users_is_held_out_when_that_is_enough_to_judge_by(users, held_out):
    chosen = _validation_users(users, seed=7)
    assert len(chosen) == users and chosen.sum() == held_out
    assert np.array_equal(chosen, _validation_users(users, seed=7))


def test_the_manifest_and_report_say_how_many_rounds_the_ranker_kept(platform_model_dir):
    account = json.loads((platform_model_dir / "manifest.json").read_text())["ranker"]
    assert account["rounds"] == MAX_ROUNDS == account["max_rounds"] and account["validation_users"] == 0
    assert load_model_dir(platform_model_dir).ranker.booster.num_trees() == account["rounds"]
    assert "too few users to hold some out" in (platform_model_dir / "evaluation.html").read_text()


def test_the_compiled_ranker_scores_candidates_as_lightgbm_does(recommender, platform_model_dir):
    """lleaves' compiled trees against LightGBM's own prediction, on known users' real candidates and on rows of
    missing figures and categories the ranker never saw."""
    artifacts, ranking = load_model_dir(platform_model_dir), recommender.ranking
    at_home = {"sessions": artifacts.sessions, "now": artifacts.manifest.sessions.data_end}
    users = np.arange(min(200, artifacts.user_factors.shape[0]))
    batch = QueryBatch.of_users(
        artifacts.user_factors, artifacts.user_items, users, k=10, narrowing=Narrowing(ranking.unavailable), **at_home
    )
    features = ranking.features(batch, ranking.candidates(batch))
    unusual = np.full((3, features.shape[1]), np.nan, dtype=np.float32)
    unusual[1, FEATURES.index("category")], unusual[2, FEATURES.index("category")] = 999, -1
    features = np.vstack([features, unusual])
    expected = artifacts.ranker.booster.predict(features)
    assert len(features) > 1000 and np.ptp(expected) > 0
    np.testing.assert_allclose(artifacts.ranker.score(features), expected, rtol=0, atol=1e-12)


def test_known_users_lists_hold_what_the_two_stages_answer(recommender, platform_features):
    for user in known_users(platform_features, 80):
        for query in (Query(user, 10), Query(user, 5, max_per_channel=1), Query(user, 3, categories=["music"])):
            quick = recommender.lookup(query)
            exact = recommender.rank([query])[0]
            assert isinstance(exact, Recommendations)
            if quick is not None:
                assert quick.video_ids == exact.video_ids
                np.testing.assert_allclose(quick.scores, exact.scores, atol=1e-5)


def test_filters_narrow_every_answer_and_fall_back_to_ranking_what_they_allow(recommender, platform_model_dir):
    tables = load_model_dir(platform_model_dir).tables
    videos = load_model_dir(platform_model_dir).videos
    category_of = {video: tables.category_names[code] for video, code in zip(videos.all_ids(), tables.categories)}
    channel_of = dict(zip(videos.all_ids(), tables.channels.tolist()))
    published = dict(zip(videos.all_ids(), tables.published.tolist()))
    rare = min(set(category_of.values()), key=list(category_of.values()).count)
    cut = float(np.nanquantile(tables.published, 0.8))
    for user in ("u001", "u002", "u003", "brand-new"):
        history = ["v010", "v020"] if user == "brand-new" else None
        in_category = recommend(recommender, user, 5, history=history, categories=[rare])
        assert in_category.video_ids and {category_of[video] for video in in_category.video_ids} == {rare}
        capped = recommend(recommender, user, 10, history=history, max_per_channel=1)
        channels = [channel_of[video] for video in capped.video_ids]
        assert len(capped.video_ids) == 10 and len(channels) == len(set(channels))
        recent = recommend(recommender, user, 5, history=history, published_after=cut)
        assert recent.video_ids and all(published[video] > cut for video in recent.video_ids)
    # Ask one video more of a category than u001's precomputed list holds: the list cannot answer, and the fallback
    # ranks everything the category allows.
    listed = load_model_dir(platform_model_dir).topn[recommender_user_index(platform_model_dir, "u001")]
    held = {
        name: sum(category_of[video] == name for video in videos.ids_of(listed[listed >= 0]))
        for name in set(category_of.values())
    }
    scarce = min(held, key=held.get)
    query = Query("u001", held[scarce] + 1, categories=[scarce])
    assert recommender.lookup(query) is None
    answer = recommender.rank([query])[0]
    assert len(answer.video_ids) == held[scarce] + 1 and {category_of[v] for v in answer.video_ids} == {scarce}


def recommender_user_index(model_dir, user: str) -> int:
    return load_model_dir(model_dir).users.index_of(user)


def test_unknown_categories_are_reported_and_a_model_without_a_catalogue_refuses_to_narrow(recommender, model_dir):
    answer = recommend(recommender, "u001", 3, categories=["music", "no-such-category"])
    assert answer.unknown_categories == ["no-such-category"]
    plain = Recommender.load(model_dir)
    for query in (Query("u001", 3, categories=["music"]), Query("u001", 3, max_per_channel=2)):
        refused = ask(plain, query)
        assert isinstance(refused, UnsupportedFilter) and "trained without a video catalogue" in str(refused)


def test_time_features_are_computed_as_of_the_data_end_never_the_clock(
    recommender, platform_model_dir, platform_features, monkeypatch
):
    tables = load_model_dir(platform_model_dir).tables
    assert tables.data_end == platform_features.data_end
    age = tables.features[:, VIDEO_FEATURES.index("age_days")]
    known = ~np.isnan(tables.published)
    np.testing.assert_allclose(age[known], (tables.data_end - tables.published[known]) / DAY, rtol=1e-5)
    queries = [Query("new-user", 10, history=["v010", "v030"]), Query("u004", 10, exclude_watched=False)]
    today = recommender.rank(queries)
    monkeypatch.setattr(time, "time", lambda: tables.data_end + 90 * DAY)
    assert Recommender.load(platform_model_dir).rank(queries) == today


def test_the_judged_ranker_never_learns_from_the_test_window(platform_features):
    """Everything after the cut scrambled: the ranker the evaluation judges comes out the same, byte for byte."""
    relevance = Relevance.for_events(platform_features.pair_events)
    split = TimeSplit(platform_features, test_days=7, use_ranker=True, min_positives=1)
    events = platform_features.pair_events
    after = events.timestamp >= split.cut
    rng = np.random.default_rng(3)
    completion = events.completion.copy()
    completion[after] = rng.random(int(after.sum()))
    codes = events.event_codes.copy()
    codes[after] = rng.permutation(codes[after])
    scrambled = replace(platform_features, pair_events=replace(events, completion=completion, event_codes=codes))
    original = split.learn_ranker(relevance, SMALL_PARAMS, cut=split.ranker_cut, end=split.cut)
    again = TimeSplit(scrambled, test_days=7, use_ranker=True, min_positives=1).learn_ranker(
        relevance, SMALL_PARAMS, cut=split.ranker_cut, end=split.cut
    )
    assert original.ranker.booster.model_to_string() == again.ranker.booster.model_to_string()


def test_with_too_few_satisfying_watches_auto_ships_als_alone():
    platform = generate_platform(users=300, videos=200, seed=5)  # home and in session: fewer than MIN_POSITIVES
    features = build_features(
        validate_events(platform.events, "events"), videos=validate_catalogue(platform.videos, "videos")
    )
    result = train(features, SMALL_PARAMS, TrainingOptions(ranker="auto", allow_worse=True))
    assert result.trained.ranker is None and result.kind == "als" and "sequential" not in result.metrics


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"split": "user", "ranker": "on"}, "--ranker on learns from a time window"),
        ({"split": "time", "test_days": 40}, "leaves nothing to train on"),
        ({"split": "sideways"}, "--split must be one of"),
    ],
)
def test_options_the_data_cannot_honour_are_refused(platform_features, options, message):
    with pytest.raises(ValueError, match=message):
        train(platform_features, SMALL_PARAMS, TrainingOptions(**options))


def test_a_ranker_learned_on_other_features_is_refused_naming_the_file(platform_model_dir, tmp_path):
    import hashlib
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(platform_model_dir, copy)
    text = (copy / "ranker.txt").read_text().replace("als_score", "old_score")
    (copy / "ranker.txt").write_text(text)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["ranker.txt"] = {"bytes": len(text.encode()), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match=r"ranker\.txt: learned on features \[.*'old_score'"):
        Recommender.load(copy)


def channel_platform() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three channels of eight videos, thirty loyal users each who watch their channel through (and skip a video
    elsewhere), over three weeks; one more upload per channel an hour before the log ends, nobody has seen."""
    rng = np.random.default_rng(0)
    start = 1_700_000_000
    videos, events = [], []
    for c, category in enumerate(("music", "news", "gaming")):
        for n in range(8):
            videos.append((f"c{c}v{n}", f"c{c}", category, 300.0, start - DAY * (30 - n)))
        for u in range(30):
            user = f"c{c}fan{u:02d}"
            for n in rng.choice(8, size=5, replace=False):
                events.append((user, f"c{c}v{n}", start + int(rng.integers(0, 21 * DAY)), "view", 290.0, 300.0))
            other = (c + 1) % 3
            events.append(
                (user, f"c{other}v{rng.integers(8)}", start + int(rng.integers(0, 21 * DAY)), "view", 15.0, 300.0)
            )
    end = max(event[2] for event in events)
    videos += [
        (f"c{c}new", f"c{c}", category, 300.0, end - 3600) for c, category in enumerate(("music", "news", "gaming"))
    ]
    columns = ["user_id", "video_id", "timestamp", "event", "watch_seconds", "video_duration"]
    catalogue = ["video_id", "channel_id", "category", "duration_seconds", "published_at"]
    return pd.DataFrame(events, columns=columns), pd.DataFrame(videos, columns=catalogue)


def test_a_new_upload_with_no_events_is_recommended_to_users_who_watch_its_channel_through(tmp_path):
    events, catalogue = channel_platform()
    features = build_features(validate_events(events, "events"), videos=validate_catalogue(catalogue, "videos"))
    result = train(features, SMALL_PARAMS, TrainingOptions(ranker="off", allow_worse=True))
    model = Recommender.load(save_versioned(to_artifacts(result.trained), tmp_path))
    for c in range(3):
        for user in (f"c{c}fan00", f"c{c}fan07", f"c{c}fan21"):
            assert f"c{c}new" in recommend(model, user, 4).video_ids
        alike = similar(model, f"c{c}v3", 10).video_ids  # the channel's videos first, its new upload among them
        assert f"c{c}new" in alike and all(video.startswith(f"c{c}") for video in alike[: alike.index(f"c{c}new")])
    assert "c0new" not in recommend(model, "c1fan03", 4).video_ids
