"""Writes tests/data/format5-*/ and their answers with the code of the commit that adds this script.

    python -m tests.data.make_format5

Two small model directories in model format 5 (a two-stage model with its catalogue, and ALS alone without one)
and, beside each, `<name>-answers.json`: what that code answered to a fixed set of queries, one at a time the
way the server asks (the precomputed or fallback answer when there is one, else scored). Later code must load
these directories and give the same answers (tests/test_older_models.py). The evaluation report's chart is left
out (matplotlib hidden) to keep the files small.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from features.build_features import build_features
from features.catalogue import validate_catalogue
from features.events import validate_events
from features.sample_events import generate_platform
from vrmodels.model.artifacts import write_model_dir
from vrmodels.model.queries import Query, Recommendations, SimilarQuery
from vrmodels.model.recommend import Recommender
from vrmodels.model.threads import limit_blas_threads
from vrmodels.training.als import TrainParams
from vrmodels.training.trainer import to_artifacts, train

HERE = Path(__file__).resolve().parent
PARAMS = TrainParams(factors=16, regularization=5.0, alpha=1.0, iterations=10, seed=3)


def queries(recommender: Recommender, users: list[str], videos: list[str], categories: list[str]) -> list:
    known, other = users[:6], users[6:12]
    asked: list = []
    for user in known:
        asked += [Query(user, 3), Query(user, 10), Query(user, 60), Query(user, 5, exclude_watched=False)]
        asked += [Query(user, 4, exclude=videos[:5]), Query(user, 5, candidates=[*videos[10:30], "nope"])]
        asked += [Query(user, 5, history=videos[40:43])]
    for user in other:
        asked += [Query(f"new-{user}", 5, history=[videos[3], videos[70], videos[71]]), Query(f"new-{user}", 4)]
        asked += [Query(None, 6, history=[videos[100], "unknown-video"])]
    if categories:
        for user in known:
            asked += [
                Query(user, 5, categories=categories[:2]),
                Query(user, 6, max_per_channel=1),
                Query(user, 5, categories=[categories[0], "no-such-category"], max_per_channel=2),
                Query(user, 5, published_after=1_738_000_000.0),
                Query(f"new-{user}", 5, categories=categories[1:2]),
            ]
    asked += [SimilarQuery(video, 5) for video in videos[:8]] + [SimilarQuery("no-such-video", 3)]
    return asked


def encoded(query: object, answer: object) -> dict:
    record: dict = {"query": {"kind": type(query).__name__, **_fields(query)}}
    if isinstance(answer, Recommendations):
        record["answer"] = {
            "video_ids": answer.video_ids,
            "scores": answer.scores,
            "fallback": answer.fallback,
            "unknown_video_ids": answer.unknown_video_ids,
            "unknown_categories": answer.unknown_categories,
        }
    else:
        record["answer"] = {"kind": type(answer).__name__, "text": str(answer)}
    return record


def _fields(query: object) -> dict:
    names = query.__slots__  # type: ignore[attr-defined]
    return {
        name: list(value) if isinstance(value, tuple) else getattr(query, name)
        for name in names
        for value in [getattr(query, name)]
    }


def write(name: str, directory: Path, categories: list[str]) -> None:
    recommender = Recommender.load(directory)
    users = list(recommender._users.ids_of(range(0, recommender.user_count, max(1, recommender.user_count // 12))))
    videos = list(recommender._videos.ids_of(range(recommender.video_count)))
    asked = queries(recommender, users, videos, categories)
    one_by_one = [recommender.quick(query) or recommender.answer([query])[0] for query in asked]
    records = [encoded(query, answer) for query, answer in zip(asked, one_by_one)]
    (HERE / f"{name}-answers.json").write_text(json.dumps(records, indent=1))


def main() -> None:
    limit_blas_threads()
    sys.modules["matplotlib"] = None  # type: ignore[assignment]  (no chart: smaller files)
    platform = generate_platform(users=400, videos=240, seed=21)
    events = validate_events(platform.events, "platform events")
    catalogue = validate_catalogue(platform.videos, "catalogue")
    for name, features, options in (
        ("format5-two-stage", build_features(events, videos=catalogue), {"ranker": "on"}),
        ("format5-als", build_features(events), {}),
    ):
        directory = HERE / name
        shutil.rmtree(directory, ignore_errors=True)
        result = train(features, PARAMS, **options)
        write_model_dir(to_artifacts(result), directory)
        categories = sorted(catalogue["category"].dropna().unique().tolist()) if options else []
        write(name, directory, categories)
        print(name, result.shipped, {key: round(value["ndcg"], 4) for key, value in result.metrics.items()})


if __name__ == "__main__":
    main()
