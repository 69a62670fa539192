import numpy as np
import pytest

from vrmodels.recommend import Query, Recommender, SimilarQuery, UnknownVideoError


@pytest.fixture(scope="module")
def recommender(model_dir) -> Recommender:
    return Recommender.load(model_dir)


@pytest.fixture(scope="module")
def watched(sample_features):
    """user id → set of video ids in the training data."""
    frame = sample_features.interactions
    users = np.asarray(sample_features.user_ids)[frame["user_index"]]
    videos = np.asarray(sample_features.video_ids)[frame["video_index"]]
    result: dict[str, set[str]] = {}
    for user, video in zip(users, videos):
        result.setdefault(user, set()).add(video)
    return result


def ids(recommendations) -> list[str]:
    return [item.video_id for item in recommendations.items]


def test_known_user_gets_k_unwatched_videos_best_first(recommender, watched):
    result = recommender.recommend("u001", k=5)
    assert len(result.items) == 5 and not result.fallback
    assert not set(ids(result)) & watched["u001"]
    scores = [item.score for item in result.items]
    assert scores == sorted(scores, reverse=True)


def test_watched_videos_come_back_when_not_excluded(recommender, watched):
    result = recommender.recommend("u001", k=recommender.video_count, exclude_watched=False)
    assert watched["u001"] <= set(ids(result))


def test_k_beyond_what_is_left_drops_filtered_padding(recommender, watched):
    result = recommender.recommend("u001", k=1000)
    assert len(ids(result)) == len(set(ids(result))) == recommender.video_count - len(watched["u001"])
    assert all(item.score > -1e30 for item in result.items)


def test_exclude_list_is_respected(recommender):
    first = recommender.recommend("u001", k=3)
    again = recommender.recommend("u001", k=3, exclude=ids(first)[:2])
    assert not set(ids(first)[:2]) & set(ids(again))
    assert ids(again)[0] == ids(first)[2]


def test_candidates_restrict_the_ranking_and_report_unknown_ids(recommender, watched):
    unwatched = [v for v in recommender.popular(60).items if v.video_id not in watched["u001"]]
    candidates = [item.video_id for item in unwatched[:4]]
    result = recommender.recommend("u001", k=10, candidates=[*candidates, "no-such-video"])
    assert sorted(ids(result)) == sorted(candidates)
    assert result.unknown_video_ids == ["no-such-video"]


def test_unknown_user_without_history_gets_the_popular_fallback(recommender):
    result = recommender.recommend("never-seen", k=4)
    assert result.fallback
    assert ids(result) == ids(recommender.popular(4))


def test_fold_in_for_an_unseen_user_follows_their_history(recommender, watched):
    """An unseen user who watched what u001 watched should get much of what u001 gets."""
    history = sorted(watched["u001"])
    folded = recommender.recommend("brand-new-user", k=10, history=history)
    assert not folded.fallback
    assert not set(ids(folded)) & set(history)
    overlap = set(ids(folded)) & set(ids(recommender.recommend("u001", k=10)))
    assert len(overlap) >= 6
    assert ids(folded) != ids(recommender.popular(10))


def test_fresh_history_of_a_known_user_is_filtered(recommender):
    fresh = ids(recommender.recommend("u001", k=2))
    result = recommender.recommend("u001", k=5, history=fresh)
    assert not set(fresh) & set(ids(result))


def test_batch_matches_single_requests(recommender):
    users = ["u001", "u002", "nobody", "u003"]
    batch = recommender.recommend_batch(users, k=7)
    for user, result in zip(users, batch):
        single = recommender.recommend(user, k=7)
        assert ids(result) == ids(single)
        assert result.fallback == single.fallback
        np.testing.assert_allclose([i.score for i in result.items], [i.score for i in single.items], rtol=1e-5)


def test_similar_videos_exclude_the_video_and_rank_by_cosine(recommender):
    similar = recommender.similar("v005", k=5)
    assert len(similar) == 5
    assert "v005" not in [item.video_id for item in similar]
    scores = [item.score for item in similar]
    assert scores == sorted(scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in scores)


def test_similar_for_an_unknown_video_raises(recommender):
    with pytest.raises(UnknownVideoError, match="'nope' is not in the model"):
        recommender.similar("nope")


def test_the_popular_fallback_ranks_by_watching_through_not_by_clicks(recommender, sample_events):
    """Clickbait is the most clicked and the least finished: an unknown user must not be served it."""
    views = sample_events[sample_events.event == "view"]
    completion = (views.watch_seconds / views.video_duration).groupby(views.video_id).mean()
    most_clicked = views.video_id.value_counts().index[:10]
    clickbait = set(most_clicked[completion[most_clicked] < 0.25])
    assert clickbait  # the sample's clickbait is among the most clicked
    fallback = ids(recommender.recommend("never-seen", k=5))
    assert not set(fallback) & clickbait
    assert completion[fallback].min() > 0.5


def test_an_unknown_user_with_candidates_gets_only_candidates_by_popularity(recommender):
    popular = ids(recommender.popular(10))
    candidates = [popular[7], popular[2], "no-such-video", popular[5]]
    result = recommender.recommend("never-seen", k=2, candidates=candidates)
    assert result.fallback
    assert ids(result) == [popular[2], popular[5]]
    assert result.unknown_video_ids == ["no-such-video"]


def test_an_unknown_user_whose_history_is_all_unknown_gets_the_fallback_and_the_ids(recommender):
    result = recommender.recommend("never-seen", k=3, history=["ghost-1", "ghost-2"])
    assert result.fallback and ids(result) == ids(recommender.popular(3))
    assert result.unknown_video_ids == ["ghost-1", "ghost-2"]


def test_one_batched_answer_equals_answering_one_by_one(recommender, watched):
    queries = [
        Query("u001", 5),
        Query("u002", 5, exclude_watched=False),
        Query("someone-new", 4, history=sorted(watched["u003"])[:5]),
        Query("u004", 3, candidates=["v001", "v002", "v003", "v004"], exclude=["v002"]),
        SimilarQuery("v005", 4),
        SimilarQuery("no-such-video", 4),
        Query("u005", 6, history=["v010"], exclude=["v011"]),
    ]
    together = recommender.answer(queries)
    for query, answer in zip(queries, together):
        alone = recommender.answer([query])[0]
        if isinstance(alone, UnknownVideoError):
            assert isinstance(answer, UnknownVideoError) and answer.video_id == "no-such-video"
        else:
            assert answer.video_ids == alone.video_ids
            np.testing.assert_allclose(answer.scores, alone.scores, rtol=1e-5)
