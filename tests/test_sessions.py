"""Sequence-aware recommendations: sittings, the watched-next table, ordered and timed histories, up next, and the
in-session judgement. Trained for real on a small generated platform with series and sittings."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from starlette.testclient import TestClient

from features.build_features import build_features, main
from features.events import validate_events
from features.sample_events import generate_events
from features.sittings import sitting_ids
from serving.app import create_app
from serving.settings import Settings
from tests.asking import recommend, similar
from tests.model_files import downgrade, rewrite
from vrmodels.model.artifacts import MANIFEST_FILE, UP_NEXT_FILES, ModelArtifactError, load_model_dir, write_model_dir
from vrmodels.model.queries import Query, SimilarQuery, Watch
from vrmodels.model.ranking.base import up_next
from vrmodels.model.recommend import Recommender
from vrmodels.model.resolve import batch_of
from vrmodels.model.sessions import WatchedNext
from vrmodels.training.evaluation import QualityGateError, in_session_gate
from vrmodels.training.in_session import similar_to


@pytest.fixture(scope="module")
def recommender(platform_model_dir) -> Recommender:
    return Recommender.load(platform_model_dir)


@pytest.fixture(scope="module")
def client(tmp_path_factory, platform_model_dir):
    settings = Settings(opt_ml=tmp_path_factory.mktemp("no-opt-ml"), fallback_model_dir=platform_model_dir)
    with TestClient(create_app(settings)) as http:
        yield http


def test_a_gap_longer_than_the_session_gap_starts_a_new_sitting():
    user = np.array([0, 0, 0, 1, 1, 0])
    timestamp = np.array([0, 600, 600 + 1801, 50, 100, 600 + 1801 + 1800])
    assert sitting_ids(user, timestamp, 1800).tolist() == [0, 0, 1, 2, 2, 1]  # a gap of exactly 1800 s is not one


def test_the_feature_report_counts_sittings_at_the_gap_given(tmp_path):
    events = generate_events(users=60, videos=40, seed=2)
    events.to_csv(tmp_path / "events.csv", index=False)
    for gap in (30, 5):
        assert (
            main([str(tmp_path / "events.csv"), "--out", str(tmp_path / f"gap-{gap}"), "--session-gap", str(gap)]) == 0
        )
    wide = json.loads((tmp_path / "gap-30" / "report.json").read_text())["sittings"]
    narrow = json.loads((tmp_path / "gap-5" / "report.json").read_text())["sittings"]
    assert wide["gap_minutes"] == 30 and narrow["count"] > wide["count"] > 60
    assert wide["watches_per_sitting"]["mean"] > 1.5
    with pytest.raises(ValueError, match="--session-gap must be positive"):
        build_features(validate_events(events, "events"), session_gap_minutes=0)


def test_the_model_carries_its_watched_next_table_and_three_judgements(platform_model_dir, client):
    artifacts = load_model_dir(platform_model_dir)
    table = artifacts.sessions.next
    rows = np.diff(table.indptr)
    assert rows.max() <= 50 and rows.sum() > 0
    filled = np.flatnonzero(rows)
    shares = np.add.reduceat(table.weights, table.indptr[filled])
    assert np.all(shares <= 1 + 1e-5)
    for video in filled[:20]:  # each row heaviest first
        assert np.all(np.diff(table.weights[table.indptr[video] : table.indptr[video + 1]]) <= 0)
    judgements = artifacts.manifest.judgements
    assert {"sequential", "watched_next", "order_blind", "same_channel_next"} <= set(judgements["in_session"])
    assert {"sequential", "factor_similarity", "watched_next", "blended"} <= set(judgements["up_next"])
    info = client.get("/info").json()["model"]
    assert (
        info["kind"] == "sequential"
        and info["evaluation"]["inSession"]["ndcg"] == judgements["in_session"]["sequential"]["ndcg"]
    )
    assert info["evaluation"]["upNext"]["bestBaseline"] in judgements["up_next"]
    assert info["serving"]["precomputedUpNext"] == info["serving"]["precomputedTopN"] == 50
    assert "In session" in (platform_model_dir / "evaluation.html").read_text()


def test_the_order_of_a_history_changes_the_answer(recommender, platform_features):
    table = recommender.ranking.sessions.next
    videos = np.flatnonzero(np.diff(table.indptr) >= 5)[:40]
    ids = platform_features.video_ids
    changed = 0
    for first, second in zip(videos[::2], videos[1::2]):
        forward = recommend(recommender, None, 10, history=[ids[first], ids[second]]).video_ids
        backward = recommend(recommender, None, 10, history=[ids[second], ids[first]]).video_ids
        changed += forward != backward
    assert changed >= 0.8 * len(videos) // 2


def test_the_last_video_of_a_sitting_brings_what_was_watched_after_it(recommender, platform_features):
    table = recommender.ranking.sessions.next
    ids = platform_features.video_ids
    videos = np.flatnonzero(np.diff(table.indptr) >= 5)[:30]
    similar, _ = similar_to(recommender.ranking.items, videos, 10)
    hits, by_factors = [], []
    for video, alike in zip(videos, similar):
        top = {ids[follower] for follower in table.videos[table.indptr[video] : table.indptr[video] + 3]}
        answer = recommend(recommender, None, 10, history=[ids[video]]).video_ids
        hits.append(len(top & set(answer)) / len(top))
        by_factors.append(len(top & {ids[other] for other in alike[:10]}) / len(top))
    assert np.mean(hits) >= 1.5 * np.mean(by_factors)  # factors alone find some of them (0.29 when written)


def weighed(resolver, history: list[Watch]) -> tuple:
    """The resolver's weighing of a history (video indices, weights, times, latest time)."""
    return resolver._weighed(history, resolver.videos.positions_of([watch.video_id for watch in history]))


def test_timestamps_and_skips_weigh_the_history_as_documented(recommender, platform_features):
    resolver = recommender.resolver
    entry = recommender.manifest.sessions
    ids = platform_features.video_ids
    base = resolver._history_confidence
    _, weights, _, latest = weighed(
        resolver, [Watch(ids[1], 1_000_000.0), Watch(ids[2], 1_000_000.0 + 3600 * entry.history_half_life_hours)]
    )
    assert latest == 1_000_000.0 + 3600 * entry.history_half_life_hours
    np.testing.assert_allclose(weights, [base / 2, base], rtol=1e-5)  # a half-life before the latest: half
    untimed = weighed(resolver, [Watch(ids[video]) for video in range(int(entry.history_half_life_watches) + 1)])[1]
    np.testing.assert_allclose(untimed[[0, -1]], [base / 2, base], rtol=1e-5)
    duration = float(np.exp(resolver._durations[3]))
    skipped = weighed(resolver, [Watch(ids[3], None, 0.1 * duration), Watch(ids[4], None, None)])[1]
    watched = weighed(resolver, [Watch(ids[3], None, 0.95 * duration), Watch(ids[4], None, None)])[1]
    skip_weight = recommender.manifest.confidence["skip_weight"]
    np.testing.assert_allclose(skipped[0], watched[0] * skip_weight, rtol=1e-5)


def test_minutes_since_the_channel_count_from_the_viewers_last_watch_of_it_alone_or_in_a_batch(
    recommender, platform_features
):
    ranking, channels = recommender.ranking, recommender.ranking.tables.channels
    first = int(np.flatnonzero(channels >= 0)[0])
    second = int(np.flatnonzero((channels >= 0) & (channels != channels[first]))[0])
    unseen = int(np.flatnonzero((channels >= 0) & ~np.isin(channels, channels[[first, second]]))[0])
    pick = {video: int(np.flatnonzero(channels == channels[video])[-1]) for video in (first, second, unseen)}
    ids = platform_features.video_ids
    start = float(recommender.manifest.sessions.data_end) - 7200
    query = Query(
        None,
        k=3,
        history=[Watch(ids[first], start), Watch(ids[second], start + 3600)],
        candidates=[ids[video] for video in pick.values()],
    )
    other = Query(None, k=3, history=[Watch(ids[unseen], start)])
    column = ranking.features_names.index("minutes_since_channel")

    def minutes(queries: list[Query], row: int) -> dict[int, float]:
        resolved = [recommender.resolver.resolve(each) for each in queries]
        batch = batch_of(resolved, len(ids), fold_in=recommender._fold_in, sittings=True).rows([row])
        candidates = ranking.candidates(batch)
        values = ranking.features(batch, candidates)[:, column]
        return {int(video): float(value) for video, value in zip(candidates.video, values)}

    alone, in_a_batch = minutes([query], 0), minutes([other, query], 1)
    assert alone[pick[first]] == pytest.approx(60) and alone[pick[second]] == pytest.approx(0)
    assert np.isnan(alone[pick[unseen]])
    assert in_a_batch.keys() == alone.keys()
    np.testing.assert_array_equal(list(in_a_batch.values()), list(alone.values()))


def test_a_known_users_history_places_them_in_a_sitting_and_up_next_for_them_ends_it(recommender, platform_features):
    ids = platform_features.video_ids
    video = ids[int(np.argmax(np.diff(recommender.ranking.sessions.next.indptr)))]
    personal = similar(recommender, video, 10, user_id="u003")
    as_sitting = recommend(recommender, "u003", 10, history=[video])
    assert personal.video_ids == as_sitting.video_ids and video not in personal.video_ids
    anyone = similar(recommender, video, 10)
    assert anyone.video_ids == recommend(recommender, None, 10, history=[video]).video_ids


def test_up_next_for_a_video_nobody_watched_anything_after_is_factor_similarity(model_dir):
    model = Recommender.load(model_dir)  # ALS with a watched-next table: up next blends the two
    table = model.ranking.sessions.next
    lonely = int(np.flatnonzero(np.diff(table.indptr) == 0)[0]) if (np.diff(table.indptr) == 0).any() else None
    items = model.ranking.items
    cosine_ids, cosine = model.ranking.topk.similar(np.asarray([0]), 20)
    empty = WatchedNext(
        np.zeros(len(items) + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), table.support
    )
    ranked, _ = up_next(items, empty, 0, (cosine_ids[0], cosine[0]), blend=0.7)
    assert ranked.tolist() == cosine_ids[0].tolist()  # no followers: the factors alone, in their order
    if lonely is not None:
        ids = model.ranking.topk.similar(np.asarray([lonely]), 5)[0][0]
        answer = similar(model, load_model_dir(model_dir).videos.all_ids()[lonely], 5).video_ids
        assert answer == [load_model_dir(model_dir).videos.all_ids()[index] for index in ids]


def test_up_next_lists_hold_the_answer_a_format_6_directory_ranks_per_request(platform_model_dir, tmp_path):
    older = shutil.copytree(platform_model_dir, tmp_path / "format6")
    downgrade(older, 6, ())
    listed, ranked = Recommender.load(platform_model_dir), Recommender.load(older)
    assert ranked.manifest.format_version == 6 and ranked.manifest.serving.up_next == 0
    n = listed.manifest.serving.up_next
    video_ids = load_model_dir(platform_model_dir).videos.all_ids()
    assert n == 50 and load_model_dir(platform_model_dir).up_next.shape == (len(video_ids), n)
    for k in (1, 10, n):
        for video_id in video_ids[::5]:
            query = SimilarQuery(video_id, k)
            quick, exact = listed.lookup(query), ranked.rank([query])[0]
            assert quick is not None and ranked.lookup(query) is None
            assert quick.video_ids == exact.video_ids
            np.testing.assert_allclose(quick.scores, exact.scores, rtol=0, atol=1e-5)
    video, other = video_ids[:2]
    for query in (  # what the lists cannot answer is ranked: a viewer's up next, an unknown video, k beyond them
        SimilarQuery(video, 5, user_id="u003"),
        SimilarQuery(video, 5, history=[Watch(other)]),
        SimilarQuery("not-a-video", 5),
        SimilarQuery(video, n + 1),
    ):
        assert listed.lookup(query) is None


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("indices", r"up_next\.npy: video indices outside 0\.\."),
        ("rows", r"up_next\.npy: \d+ rows, id maps say \d+"),
        ("scores", r"up_next_scores\.npy: shape \(\d+, 49\) is not up_next\.npy's"),
        ("half", r"lists up_next\.npy without \{'up_next_scores\.npy'\}"),
    ],
)
def test_up_next_lists_that_do_not_fit_the_model_are_refused_naming_the_file(
    platform_model_dir, tmp_path, breakage, message
):
    copy = shutil.copytree(platform_model_dir, tmp_path / "model")
    lists, scores = (np.load(copy / name) for name in UP_NEXT_FILES)
    if breakage == "indices":
        lists[0, 0] = 10_000_000
        rewrite(copy, UP_NEXT_FILES[0], lists)
    elif breakage == "rows":
        rewrite(copy, UP_NEXT_FILES[0], lists[:-1])
    elif breakage == "scores":
        rewrite(copy, UP_NEXT_FILES[1], scores[:, :-1])
    else:
        manifest = json.loads((copy / MANIFEST_FILE).read_text())
        del manifest["files"][UP_NEXT_FILES[1]]
        (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match=message):
        load_model_dir(copy)


def test_up_next_lists_are_written_with_their_scores_or_not_at_all(platform_model_dir, tmp_path):
    artifacts = load_model_dir(platform_model_dir)
    with pytest.raises(ModelArtifactError, match=r"up_next\.npy and up_next_scores\.npy are written together"):
        write_model_dir(replace(artifacts, up_next_scores=None), tmp_path / "model")
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("history", "field"),
    [
        (["v001", {"videoId": "v002", "timestamp": "soon"}], "history.1.timestamp"),
        ([{"videoId": "v002", "watchedSeconds": -5}], "history.0.watchedSeconds"),
        (["v001", 42], "history.1"),
        ([{"video": "v002"}], "history.0.videoId"),
    ],
)
def test_a_bad_history_item_is_422_naming_its_index_and_field(client, history, field):
    response = client.post("/invocations", json={"user_id": "u001", "history": history})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith(f"{field}:")


def test_timed_history_items_are_answered_and_declared_in_the_contract(client):
    history = [{"videoId": "v010", "timestamp": "2025-02-20T10:00:00Z", "watchedSeconds": 200}, "v011"]
    response = client.post("/invocations", json={"history": history, "k": 3})
    assert response.status_code == 200 and len(response.json()["recommendations"]) == 3
    up = client.post("/invocations", json={"video_id": "v010", "user_id": "u001", "history": ["v009"], "k": 3})
    assert up.status_code == 200 and set(up.json()) == {"videoId", "similar", "recommendationId"}
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert "WatchItem" in schemas and "history" in schemas["SimilarRequest"]["properties"]


def test_the_gate_refuses_a_model_that_loses_to_watched_next_in_session():
    metrics = {"sequential": {"ndcg": 0.10}, "watched_next": {"ndcg": 0.12}}
    with pytest.raises(QualityGateError, match=r"in session, the sequence-aware two-stage model NDCG@10 0\.1000"):
        in_session_gate(metrics, allow_worse=False, kind="sequential")
    in_session_gate(metrics, allow_worse=True, kind="sequential")  # warns, ships
    in_session_gate({**metrics, "sequential": {"ndcg": 0.2}}, allow_worse=False, kind="sequential")
