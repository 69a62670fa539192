"""Model directories written by earlier code load and answer exactly as that code answered.

tests/data/format5-*/ were written, and their answers recorded, by tests/data/make_format5.py at the commit that
added it: a two-stage model with its catalogue and ALS alone, each asked known users, fold-ins, candidates,
exclusions, narrowing and similar videos.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.asking import ask
from vrmodels.model.queries import Query, Recommendations, SimilarQuery
from vrmodels.model.recommend import Recommender

DATA = Path(__file__).resolve().parent / "data"
MODELS = ("format5-two-stage", "format5-als")


def recorded(name: str) -> list[tuple[Query | SimilarQuery, dict]]:
    pairs = []
    for record in json.loads((DATA / f"{name}-answers.json").read_text()):
        fields = dict(record["query"])
        kind = fields.pop("kind")
        query = SimilarQuery(**fields) if kind == "SimilarQuery" else Query(**fields)
        pairs.append((query, record["answer"]))
    return pairs


def same_answer(answer: object, expected: dict) -> bool:
    if not isinstance(answer, Recommendations):
        return {"kind": type(answer).__name__, "text": str(answer)} == expected
    return (
        answer.video_ids == expected["video_ids"]
        and answer.fallback == expected["fallback"]
        and answer.unknown_video_ids == expected["unknown_video_ids"]
        and answer.unknown_categories == expected["unknown_categories"]
        and answer.scores == pytest.approx(expected["scores"], abs=2e-6)
    )


@pytest.mark.parametrize("name", MODELS)
def test_an_older_model_directory_answers_each_query_as_the_code_that_wrote_it(name):
    recommender = Recommender.load(DATA / name)
    differing = [query for query, expected in recorded(name) if not same_answer(ask(recommender, query), expected)]
    assert differing == []


@pytest.mark.parametrize("name", MODELS)
def test_a_query_ranked_with_others_gets_the_answer_it_gets_alone(name):
    recommender = Recommender.load(DATA / name)
    queries = [query for query, _ in recorded(name)]
    together = recommender.rank(queries)
    alone = [recommender.rank([query])[0] for query in queries]
    assert [answer for answer, single in zip(together, alone) if not same_answer(answer, encoded(single))] == []


def encoded(answer: object) -> dict:
    if not isinstance(answer, Recommendations):
        return {"kind": type(answer).__name__, "text": str(answer)}
    return {
        "video_ids": answer.video_ids,
        "scores": answer.scores,
        "fallback": answer.fallback,
        "unknown_video_ids": answer.unknown_video_ids,
        "unknown_categories": answer.unknown_categories,
    }
