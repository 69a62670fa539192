"""The bundled sample must behave like a real watch log, or the quality work is tuned to a toy."""

from __future__ import annotations

import pandas as pd
import pytest

from features.build_features import build_features_from_file
from features.sample_events import EARLY_SKIP, generate_events
from tests.server import PROJECT_ROOT
from vrmodels.training.trainer import train

BUNDLED_SAMPLE = PROJECT_ROOT / "data" / "sample" / "events.csv.gz"


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return generate_events(users=1500, videos=300, seed=3)


def completion_of_views(log: pd.DataFrame) -> pd.DataFrame:
    views = log[log.event == "view"]
    return views.assign(completion=views.watch_seconds / views.video_duration)


def test_early_skips_are_common(log):
    views = completion_of_views(log)
    assert 0.2 < (views.completion <= EARLY_SKIP).mean() < 0.6


def test_clickbait_is_among_the_most_clicked_and_rarely_finished(log):
    per_video = completion_of_views(log).groupby("video_id").completion.agg(["size", "mean"])
    most_clicked = per_video.sort_values("size", ascending=False).head(10)
    assert (most_clicked["mean"] < 0.25).sum() >= 2
    assert per_video["mean"].median() > 0.4


def test_explicit_events_follow_satisfying_watches(log):
    explicit = log[log.event.isin(["complete", "like", "share"])]
    assert set(explicit.event) == {"complete", "like", "share"}
    assert explicit.watch_seconds.isna().all() and explicit.video_duration.isna().all()
    views = completion_of_views(log).set_index(["user_id", "video_id"]).completion
    best_watch = views.groupby(level=[0, 1]).max()
    liked = log[log.event == "like"].set_index(["user_id", "video_id"]).index.unique()
    assert best_watch.loc[liked].mean() > best_watch.mean() + 0.2


def test_replays_exist(log):
    views = log[log.event == "view"]
    assert views.duplicated(["user_id", "video_id"]).mean() > 0.02


def test_the_same_seed_gives_the_same_log():
    pd.testing.assert_frame_equal(
        generate_events(users=50, videos=30, seed=1), generate_events(users=50, videos=30, seed=1)
    )


def test_the_bundled_sample_beats_most_popular_five_times_with_defaults():
    result = train(build_features_from_file(BUNDLED_SAMPLE))
    metrics = result.metrics
    assert result.relevance.kind == "satisfying_watch"
    assert metrics["als"]["ndcg"] >= 5 * metrics["most_popular"]["ndcg"]
    assert metrics["als"]["popular_share"] < metrics["most_popular"]["popular_share"] / 5  # not an echo of clicks
