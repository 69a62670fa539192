import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from features.build_features import build_features
from features.events import validate_events
from tests.conftest import SMALL_PARAMS
from vrmodels.evaluation import ranking_metrics, temporal_split
from vrmodels.train_model import QualityGateError, fit_als, main, train, tune


def popularity_only_events(users: int = 400, videos: int = 80, per_user: int = 15, seed: int = 5) -> pd.DataFrame:
    """Every user draws from the same skewed popularity: no taste structure for ALS to find."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, videos + 1) ** 1.2
    rows = []
    for user in range(users):
        chosen = rng.choice(videos, size=per_user, replace=False, p=weights / weights.sum())
        rows += [(f"u{user}", f"v{video}", int(t)) for t, video in enumerate(chosen)]
    return validate_events(pd.DataFrame(rows, columns=["user_id", "video_id", "timestamp"]), "structureless")


def test_temporal_split_holds_out_each_users_latest_fifth():
    interactions = pd.DataFrame(
        {
            "user_index": [0] * 10 + [1, 1] + [2],
            "video_index": list(range(10)) + [0, 1] + [3],
            "last_timestamp": [5, 1, 9, 3, 7, 2, 8, 4, 6, 10] + [2, 1] + [1],
        }
    )
    held_out = temporal_split(interactions, 0.2)
    assert interactions["video_index"][held_out & (interactions.user_index == 0)].tolist() == [2, 9]
    assert interactions["video_index"][held_out & (interactions.user_index == 1)].tolist() == [0]
    assert not held_out[interactions.user_index == 2].any()  # a single interaction stays for training


def test_ranking_metrics_match_hand_computation():
    held_out = csr_matrix(np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    recommended = np.array([[1, 2, 3], [0, 1, 2], [4, 2, 1]])
    scores = np.ones((3, 3), dtype=np.float32)
    metrics = ranking_metrics(recommended, scores, held_out, 3)
    # user 0: hits at ranks 1 and 3 of 2 relevant; user 2: no hit; user 1 has nothing held out and is skipped.
    dcg = 1 + 1 / np.log2(4)
    ideal = 1 + 1 / np.log2(3)
    assert metrics["users"] == 2
    assert metrics["precision"] == pytest.approx((2 / 3 + 0) / 2)
    assert metrics["recall"] == pytest.approx((1.0 + 0) / 2)
    assert metrics["ndcg"] == pytest.approx((dcg / ideal + 0) / 2)
    assert metrics["map"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)


def test_ranking_metrics_ignore_filtered_padding():
    held_out = csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    metrics = ranking_metrics(np.array([[0, 0]]), np.array([[-3.4e38, -3.4e38]], dtype=np.float32), held_out, 2)
    assert metrics["precision"] == 0.0


def test_training_with_a_seed_is_deterministic(sample_features):
    first = fit_als(sample_features.to_csr(), SMALL_PARAMS)
    second = fit_als(sample_features.to_csr(), SMALL_PARAMS)
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    np.testing.assert_array_equal(first.user_factors, second.user_factors)


def test_als_beats_most_popular_on_structured_sample(sample_features):
    metrics = train(sample_features, SMALL_PARAMS).metrics
    assert metrics["als"]["ndcg"] > 1.3 * metrics["most_popular"]["ndcg"]


def test_quality_gate_refuses_structureless_data():
    features = build_features(popularity_only_events())
    with pytest.raises(QualityGateError, match="does not beat most-popular"):
        train(features, SMALL_PARAMS)


def test_allow_worse_ships_despite_the_gate():
    features = build_features(popularity_only_events())
    result = train(features, SMALL_PARAMS, allow_worse=True)
    assert result.metrics["als"]["ndcg"] <= result.metrics["most_popular"]["ndcg"]


def test_cli_gate_failure_exits_non_zero_and_writes_nothing(tmp_path):
    build_features(popularity_only_events()).save(tmp_path / "features")
    code = main(
        ["--features", str(tmp_path / "features"), "--models-root", str(tmp_path / "models"), "--factors", "16"]
    )
    assert code == 3
    assert not (tmp_path / "models").exists()


def test_tuning_never_sees_the_test_part(sample_features, monkeypatch):
    test_rows = temporal_split(sample_features.interactions)
    seen: list[np.ndarray] = []
    import vrmodels.train_model as train_model

    real_compare = train_model.compare_with_popular

    def recording_compare(features, train_rows, held_out_rows, params, show_progress=False):
        seen.append(train_rows | held_out_rows)
        return real_compare(features, train_rows, held_out_rows, params, show_progress)

    monkeypatch.setattr(train_model, "compare_with_popular", recording_compare)
    best, history = tune(sample_features, ~test_rows, trials=4, base=SMALL_PARAMS)
    assert len(history) == len(seen) >= 2
    assert all(not (rows & test_rows).any() for rows in seen)
    assert max(entry["validation_ndcg"] for entry in history) == next(
        entry["validation_ndcg"] for entry in history if entry["params"] == best.__dict__
    )
