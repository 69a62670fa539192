import math

import numpy as np
import pandas as pd
import pytest

from features.build_features import build_features, main
from features.confidence import ConfidenceConfig, event_signal
from features.events import validate_events
from features.feature_set import FeatureSet


def events(rows: list[tuple]) -> pd.DataFrame:
    columns = ["user_id", "video_id", "timestamp", "event", "watch_seconds", "video_duration"]
    return validate_events(pd.DataFrame(rows, columns=columns), "test")


def test_duplicate_events_are_dropped_and_counted():
    frame = events([("u1", "v1", 10, "view", 5, 10), ("u1", "v1", 10, "view", 5, 10), ("u1", "v1", 11, "view", 5, 10)])
    features = build_features(frame)
    assert features.report["dropped"]["duplicate_events"] == 1
    assert features.interactions["events"].tolist() == [2]


def test_minimum_counts_drop_and_count_events_of_rare_users_and_videos():
    frame = events(
        [("u1", "v1", 1, "view", 0, 1), ("u1", "v2", 2, "view", 0, 1), ("u1", "v3", 3, "view", 0, 1)]
        + [("u2", "v1", 4, "view", 0, 1), ("u2", "v2", 5, "view", 0, 1)]
        + [("u3", "v1", 6, "view", 0, 1)]
    )
    features = build_features(frame, min_user_events=2, min_video_events=2)
    dropped = features.report["dropped"]
    assert dropped["events_of_users_under_min"] == 1  # u3's single event
    assert dropped["events_of_videos_under_min"] == 1  # v3, seen once
    assert features.report["kept_events"] == 4
    assert features.user_ids == ["u1", "u2"]
    assert features.video_ids == ["v1", "v2"]
    assert features.report["kept_events"] + sum(dropped.values()) == features.report["input_events"]


def test_confidence_combines_event_weight_completion_and_rating():
    frame = events([("u1", "v1", 1, "like", 30, 60)])
    frame["rating"] = [4.0]
    config = ConfidenceConfig(event_weights={"like": 4.0}, completion_weight=2.0, rating_weight=0.5)
    assert event_signal(frame, config).tolist() == [4.0 + 2.0 * 0.5 + 0.5 * 4.0]


def test_completion_ratio_is_clipped_and_missing_duration_adds_nothing():
    frame = events([("u1", "v1", 1, "view", 500, 60), ("u1", "v2", 2, "view", 10, None), ("u1", "v3", 3, "view", 5, 0)])
    signal = event_signal(frame, ConfidenceConfig(completion_weight=2.0))
    assert signal.tolist() == [1.0 + 2.0, 1.0, 1.0]


def test_log_scaling_gives_repeats_diminishing_returns():
    frame = events([("u1", "v1", t, "view", 0, 10) for t in range(9)] + [("u1", "v2", 20, "view", 0, 10)])
    log = build_features(frame, ConfidenceConfig(scaling="log")).interactions["confidence"].to_numpy()
    linear = build_features(frame, ConfidenceConfig(scaling="linear")).interactions["confidence"].to_numpy()
    assert linear.tolist() == [9.0, 1.0]
    np.testing.assert_allclose(log, [math.log1p(9.0), math.log1p(1.0)], rtol=1e-6)


def test_zero_weight_events_leave_no_pair_and_are_counted():
    frame = events([("u1", "v1", 1, "view", 0, 10), ("u1", "v2", 2, "impression", 0, 10)])
    config = ConfidenceConfig(event_weights={"view": 1.0, "impression": 0.0}, completion_weight=0.0)
    features = build_features(frame, config)
    assert features.report["dropped"]["zero_confidence_pairs"] == 1
    assert len(features.interactions) == 1


def test_pairs_keep_the_latest_timestamp():
    frame = events([("u1", "v1", 5, "view", 0, 1), ("u1", "v1", 9, "like", 0, 1), ("u1", "v1", 7, "view", 0, 1)])
    assert build_features(frame).interactions["last_timestamp"].tolist() == [9]


def test_negative_weights_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        ConfidenceConfig(completion_weight=-1.0)


def test_cli_writes_a_loadable_feature_directory(tmp_path, sample_events):
    source = tmp_path / "events.csv"
    sample_events.to_csv(source, index=False)
    assert main([str(source), "--out", str(tmp_path / "features")]) == 0
    loaded = FeatureSet.load(tmp_path / "features")
    assert loaded.report["input_events"] == len(sample_events)
    assert loaded.to_csr().shape == (len(loaded.user_ids), len(loaded.video_ids))


def test_cli_reports_bad_input_and_exits_non_zero(tmp_path, capsys):
    source = tmp_path / "events.csv"
    source.write_text("user_id,video_id\nu1,v1\n")
    assert main([str(source), "--out", str(tmp_path / "features")]) == 2
    assert "missing required column(s) 'timestamp'" in capsys.readouterr().err
