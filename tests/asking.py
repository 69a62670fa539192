"""Asking a Recommender one query the way the server does: the cheap answer when there is one, else scored."""

from __future__ import annotations

from vrmodels.model.queries import Answer, AnyQuery, Query, Recommendations, SimilarQuery
from vrmodels.model.recommend import Recommender


def ask(recommender: Recommender, query: AnyQuery) -> Answer:
    return recommender.lookup(query) or recommender.rank([query])[0]


def recommend(recommender: Recommender, user_id: str | None, k: int, **options: object) -> Recommendations:
    """A user query's answer; `options` as Query takes them (exclude_watched, exclude, candidates, history)."""
    answer = ask(recommender, Query(user_id, k, **options))  # type: ignore[arg-type]
    assert isinstance(answer, Recommendations)
    return answer


def similar(recommender: Recommender, video_id: str, k: int, **viewer: object) -> Answer:
    """Up next after `video_id`; `viewer`: user_id, history (as SimilarQuery takes them)."""
    return ask(recommender, SimilarQuery(video_id, k, **viewer))  # type: ignore[arg-type]


def popular(recommender: Recommender, k: int) -> list[str]:
    """The fallback ranking: what a user the model does not know gets."""
    answer = recommender.lookup(Query(None, k))
    assert isinstance(answer, Recommendations) and answer.fallback
    return answer.video_ids
