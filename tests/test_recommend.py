import numpy as np
import pytest

from tests.asking import ask, popular, recommend, similar
from vrmodels.model.queries import Query, Recommendations, SimilarQuery, UnknownVideo
from vrmodels.model.recommend import Recommender, ScoringOptions


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


def test_known_user_gets_k_unwatched_videos_best_first(recommender, watched):
    result = recommend(recommender, "u001", 5)
    assert len(result.video_ids) == 5 and not result.fallback
    assert not set(result.video_ids) & watched["u001"]
    assert result.scores == sorted(result.scores, reverse=True)


def test_a_query_asks_for_five_videos_unless_it_says_otherwise(recommender):
    assert Query("u001").k == SimilarQuery("v005").k == 5
    assert len(ask(recommender, Query("u001")).video_ids) == 5


def test_watched_videos_come_back_when_not_excluded(recommender, watched):
    result = recommend(recommender, "u001", recommender.video_count, exclude_watched=False)
    assert watched["u001"] <= set(result.video_ids)


def test_k_beyond_what_is_left_drops_filtered_padding(recommender, watched):
    result = recommend(recommender, "u001", 1000)
    assert len(result.video_ids) == len(set(result.video_ids)) == recommender.video_count - len(watched["u001"])
    assert all(score > -1e30 for score in result.scores)


def test_exclude_list_is_respected(recommender):
    first = recommend(recommender, "u001", 3).video_ids
    again = recommend(recommender, "u001", 3, exclude=first[:2]).video_ids
    assert not set(first[:2]) & set(again)
    assert again[0] == first[2]


def test_candidates_restrict_the_ranking_and_report_unknown_ids(recommender, watched):
    unwatched = [video for video in popular(recommender, 60) if video not in watched["u001"]]
    candidates = unwatched[:4]
    result = recommend(recommender, "u001", 10, candidates=[*candidates, "no-such-video"])
    assert sorted(result.video_ids) == sorted(candidates)
    assert result.unknown_video_ids == ["no-such-video"]


def test_unknown_user_without_history_gets_the_popular_fallback(recommender):
    result = recommend(recommender, "never-seen", 4)
    assert result.fallback
    assert result.video_ids == popular(recommender, 4)


def test_fold_in_for_an_unseen_user_follows_their_history(recommender, sample_features):
    """An unseen user who watched through what a known user watched through (not the skips) gets much of what that
    user gets; the known user is the first with five videos watched through."""
    frame = sample_features.interactions
    liked = frame[frame.confidence > 0.5]
    counts = liked.user_index.value_counts()
    user = sample_features.user_ids[int(min(counts[counts >= 5].index))]
    mine = liked[liked.user_index == sample_features.user_ids.index(user)]
    history = sorted(sample_features.video_ids[video] for video in mine.video_index)
    assert len(history) >= 3
    folded = recommend(recommender, "brand-new-user", 10, history=history)
    assert not folded.fallback
    assert not set(folded.video_ids) & set(history)
    overlap = set(folded.video_ids) & set(recommend(recommender, user, 10).video_ids)
    assert len(overlap) >= 6
    assert folded.video_ids != popular(recommender, 10)


def test_fresh_history_of_a_known_user_is_filtered(recommender):
    fresh = recommend(recommender, "u001", 2).video_ids
    result = recommend(recommender, "u001", 5, history=fresh)
    assert not set(fresh) & set(result.video_ids)


def test_similar_videos_exclude_the_video_and_rank_by_cosine(recommender):
    result = similar(recommender, "v005", 5)
    assert isinstance(result, Recommendations) and len(result.video_ids) == 5
    assert "v005" not in result.video_ids
    assert result.scores == sorted(result.scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in result.scores)


def test_similar_for_an_unknown_video_is_answered_unknown_video(recommender):
    answer = similar(recommender, "nope", 5)
    assert answer == UnknownVideo("nope") and str(answer) == "video 'nope' is not in the model"


def test_the_popular_fallback_ranks_by_watching_through_not_by_clicks(recommender, sample_events):
    """Clickbait is the most clicked and the least finished: an unknown user must not be served it."""
    views = sample_events[sample_events.event == "view"]
    completion = (views.watch_seconds / views.video_duration).groupby(views.video_id).mean()
    most_clicked = views.video_id.value_counts().index[:10]
    clickbait = set(most_clicked[completion[most_clicked] < 0.25])
    assert clickbait  # the sample's clickbait is among the most clicked
    fallback = recommend(recommender, "never-seen", 5).video_ids
    assert not set(fallback) & clickbait
    assert completion[fallback].min() > 0.5


def test_an_unknown_user_with_candidates_gets_only_candidates_by_popularity(recommender):
    ranked = popular(recommender, 10)
    candidates = [ranked[7], ranked[2], "no-such-video", ranked[5]]
    result = recommend(recommender, "never-seen", 2, candidates=candidates)
    assert result.fallback
    assert result.video_ids == [ranked[2], ranked[5]]
    assert result.unknown_video_ids == ["no-such-video"]


def test_an_unknown_user_whose_history_is_all_unknown_gets_the_fallback_and_the_ids(recommender):
    result = recommend(recommender, "never-seen", 3, history=["ghost-1", "ghost-2"])
    assert result.fallback and result.video_ids == popular(recommender, 3)
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
        Query("nobody", 7),
    ]
    together = recommender.rank(queries)
    for query, answer in zip(queries, together):
        alone = recommender.rank([query])[0]
        if isinstance(alone, UnknownVideo):
            assert answer == UnknownVideo("no-such-video")
        else:
            assert answer.video_ids == alone.video_ids and answer.fallback == alone.fallback
            np.testing.assert_allclose(answer.scores, alone.scores, rtol=1e-5)


def test_scoring_from_the_column_major_copy_answers_as_the_mapped_factors_do(model_dir, recommender, watched):
    mapped_only = Recommender.load(model_dir, ScoringOptions(column_major_copy=False))
    queries = [
        *(Query(user, 20, exclude_watched=False) for user in ("u001", "u002", "u003", "u004")),
        Query("someone-new", 20, history=sorted(watched["u003"])[:5]),
        *(SimilarQuery(video, 20) for video in popular(recommender, 3)),
    ]
    for batch in (queries, queries[:1], queries[-1:]):
        for copied, mapped in zip(recommender.rank(batch), mapped_only.rank(batch)):
            assert copied.video_ids == mapped.video_ids
            assert copied.scores == pytest.approx(mapped.scores, abs=1e-5)
