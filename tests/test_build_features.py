import math

import numpy as np
import pandas as pd
import pytest

from features.build_features import build_features, main
from features.confidence import ConfidenceConfig
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


def confidences(rows: list[tuple], config: ConfidenceConfig, rating: list[float] | None = None) -> list[float]:
    frame = events(rows)
    if rating is not None:
        frame["rating"] = rating
    return build_features(frame, config).interactions["confidence"].tolist()


LINEAR = {"scaling": "linear"}


def test_confidence_combines_event_weight_completion_and_rating():
    config = ConfidenceConfig(
        event_weights={"like": 4.0}, completion_weight=2.0, skip_below=0.3, rating_weight=0.5, **LINEAR
    )
    assert confidences([("u1", "v1", 1, "like", 30, 60)], config, rating=[4.0]) == [4.0 + 2.0 * 0.5 + 0.5 * 4.0]


def test_a_skipped_view_keeps_only_the_skip_weight_and_earns_no_completion():
    config = ConfidenceConfig(completion_weight=2.0, skip_below=0.8, skip_weight=0.05, **LINEAR)
    skipped, watched = confidences([("u1", "v1", 1, "view", 10, 100), ("u1", "v2", 2, "view", 90, 100)], config)
    assert skipped == pytest.approx(1.0 * 0.05)
    assert watched == pytest.approx(1.0 + 2.0 * 0.9)


def test_completion_is_clipped_and_events_without_watch_time_earn_their_weight():
    config = ConfidenceConfig(completion_weight=2.0, skip_below=0.5, **LINEAR)
    rows = [("u1", "v1", 1, "view", 500, 60), ("u1", "v2", 2, "like", None, None)]
    assert confidences(rows, config) == [1.0 + 2.0, 4.0]


def test_replays_and_extra_events_are_damped_by_log_scaling():
    rows = [("u1", "v1", t, "view", None, None) for t in range(9)] + [("u1", "v2", 20, "view", None, None)]
    log = confidences(rows, ConfidenceConfig(scaling="log"))
    assert confidences(rows, ConfidenceConfig(**LINEAR)) == [9.0, 1.0]
    np.testing.assert_allclose(log, [math.log1p(9.0), math.log1p(1.0)], rtol=1e-6)


def test_zero_weight_events_stay_out_of_the_matrix_and_are_counted():
    frame = events([("u1", "v1", 1, "view", None, None), ("u1", "v2", 2, "impression", None, None)])
    config = ConfidenceConfig(event_weights={"view": 1.0, "impression": 0.0})
    features = build_features(frame, config)
    assert features.report["dropped"]["zero_confidence_pairs"] == 1
    assert features.to_csr().nnz == 1
    assert len(features.interactions) == 2  # kept for the split: a held-out impression is judged, not trained on


def test_re_aggregating_with_other_parameters_equals_building_with_them(sample_events):
    other = ConfidenceConfig(skip_below=0.3, skip_weight=0.5, completion_weight=1.0, scaling="linear")
    rebuilt = build_features(sample_events).with_confidence(other)
    direct = build_features(sample_events, other)
    np.testing.assert_allclose(rebuilt.interactions["confidence"], direct.interactions["confidence"], rtol=1e-6)
    assert rebuilt.confidence_config == other


def test_negative_weights_and_a_skip_floor_outside_0_to_1_are_refused():
    with pytest.raises(ValueError, match="completion_weight must be non-negative"):
        ConfidenceConfig(completion_weight=-1.0)
    with pytest.raises(ValueError, match="skip_below is a completion between 0 and 1"):
        ConfidenceConfig(skip_below=1.5)


def test_pairs_keep_the_latest_timestamp():
    frame = events([("u1", "v1", 5, "view", 1, 1), ("u1", "v1", 9, "like", None, None), ("u1", "v1", 7, "view", 1, 1)])
    assert build_features(frame).interactions["last_timestamp"].tolist() == [9]


def test_cli_writes_a_loadable_feature_directory(tmp_path, sample_events):
    source = tmp_path / "events.csv"
    sample_events.to_csv(source, index=False)
    assert main([str(source), "--out", str(tmp_path / "features")]) == 0
    loaded = FeatureSet.load(tmp_path / "features")
    assert loaded.report["input_events"] == len(sample_events)
    assert loaded.to_csr().shape == (len(loaded.user_ids), len(loaded.video_ids))
    built = build_features(sample_events)
    np.testing.assert_array_equal(loaded.pair_events.pair, built.pair_events.pair)
    np.testing.assert_allclose(loaded.pair_events.confidence(built.confidence_config), built.interactions["confidence"])


def test_cli_reports_bad_input_and_exits_non_zero(tmp_path, capsys):
    source = tmp_path / "events.csv"
    source.write_text("user_id,video_id\nu1,v1\n")
    assert main([str(source), "--out", str(tmp_path / "features")]) == 2
    assert "missing required column(s) 'timestamp'" in capsys.readouterr().err
