from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from features.build_features import build_features, build_features_from_file
from features.events import validate_events
from features.feature_set import FeatureSet
from tests.conftest import SMALL_PARAMS
from vrmodels.train_model import main
from vrmodels.training.als import fit_als
from vrmodels.training.evaluation import QualityGateError, ranking_metrics
from vrmodels.training.options import TrainingOptions
from vrmodels.training.relevance import Relevance
from vrmodels.training.split import holdout, temporal_split
from vrmodels.training.trainer import train
from vrmodels.training.tuning import Trial, search_space, tune


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
    metrics = ranking_metrics(recommended, scores, held_out, k=3)
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
    metrics = ranking_metrics(np.array([[0, 0]]), np.array([[-3.4e38, -3.4e38]], dtype=np.float32), held_out, k=2)
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
    result = train(features, SMALL_PARAMS, TrainingOptions(allow_worse=True))
    assert result.metrics["als"]["ndcg"] <= result.metrics["most_popular"]["ndcg"]


def test_cli_gate_failure_exits_non_zero_and_writes_nothing(tmp_path):
    build_features(popularity_only_events()).save(tmp_path / "features")
    code = main(
        ["--features", str(tmp_path / "features"), "--models-root", str(tmp_path / "models"), "--factors", "16"]
    )
    assert code == 3
    assert not (tmp_path / "models").exists()


def watch_events(rows: list[tuple]) -> FeatureSet:
    columns = ["user_id", "video_id", "timestamp", "event", "watch_seconds", "video_duration"]
    return build_features(validate_events(pd.DataFrame(rows, columns=columns), "watch log"))


def test_a_clickbait_view_is_not_a_hit_and_a_completed_one_is():
    features = watch_events(
        [
            ("u1", "clickbait", 1, "view", 12, 120),  # abandoned after 10%
            ("u1", "documentary", 2, "view", 1140, 1200),  # 95% watched
            ("u1", "short", 3, "view", 5, 60),  # skipped, but liked: a satisfying outcome all the same
            ("u1", "short", 4, "like", None, None),
        ]
    )
    relevance = Relevance.for_events(features.pair_events)
    relevant = dict(
        zip(np.asarray(features.video_ids)[features.interactions.video_index], relevance.mask(features.pair_events))
    )
    assert relevant == {"clickbait": False, "documentary": True, "short": True}
    assert relevance.to_dict()["description"] == "satisfying watches: completion ≥ 0.8 or a complete/like/share event"


def test_rating_data_counts_every_held_out_rating_unless_a_minimum_is_set(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t10\t5\t100\n1\t11\t2\t101\n")
    features = build_features_from_file(path, "movielens")
    assert Relevance.for_events(features.pair_events).mask(features.pair_events).tolist() == [True, True]
    strict = Relevance.for_events(features.pair_events, min_rating=4)
    assert strict.mask(features.pair_events).tolist() == [True, False]
    assert strict.describe() == "held-out ratings ≥ 4"


def test_held_out_pairs_that_are_not_relevant_stay_out_of_both_parts(sample_features):
    relevant = Relevance.for_events(sample_features.pair_events).mask(sample_features.pair_events)
    split = holdout(sample_features.interactions, relevant, 0.2)
    not_relevant_held_out = split.test_rows & ~relevant
    assert not_relevant_held_out.any() and split.relevant_rows.any()
    assert not (split.train_rows & split.test_rows).any()
    assert (split.train_rows | split.test_rows).all()
    assert not (split.relevant_rows & not_relevant_held_out).any()
    train = sample_features.to_csr(split.train_rows)
    users, videos = (
        sample_features.interactions[column].to_numpy()[split.test_rows] for column in ("user_index", "video_index")
    )
    assert not np.asarray(train[users, videos]).any()  # no held-out pair, relevant or not, is trained on


def test_tuning_results_do_not_depend_on_the_test_part(sample_features):
    relevant = Relevance.for_events(sample_features.pair_events).mask(sample_features.pair_events)
    split = holdout(sample_features.interactions, relevant, 0.2)
    # Scramble everything about the held-out pairs: their videos and how they were watched.
    rng = np.random.default_rng(0)
    scrambled_interactions = sample_features.interactions.copy()
    scrambled_interactions.loc[split.test_rows, "video_index"] = rng.permutation(
        scrambled_interactions.loc[split.test_rows, "video_index"].to_numpy()
    )
    held_out_events = split.test_rows[sample_features.pair_events.pair]
    completion = sample_features.pair_events.completion.copy()
    completion[held_out_events] = rng.random(int(held_out_events.sum()))
    scrambled = replace(
        sample_features,
        interactions=scrambled_interactions,
        pair_events=replace(sample_features.pair_events, completion=completion),
    )
    base = Trial(SMALL_PARAMS, sample_features.confidence_config)
    _, history = tune(sample_features, split.train_rows, relevant, trials=4, base=base)
    _, scrambled_history = tune(scrambled, split.train_rows, relevant, trials=4, base=base)
    assert history == scrambled_history


def test_tuning_is_never_worse_than_trial_0_on_validation(sample_features):
    relevant = Relevance.for_events(sample_features.pair_events).mask(sample_features.pair_events)
    split = holdout(sample_features.interactions, relevant, 0.2)
    base = Trial(SMALL_PARAMS, sample_features.confidence_config)
    best, history = tune(sample_features, split.train_rows, relevant, trials=6, base=base)
    scores = [entry["validation_ndcg@10"] for entry in history]
    assert history[0]["params"] == asdict(SMALL_PARAMS)
    assert history[0]["confidence"] == sample_features.confidence_config.to_dict()
    assert max(scores) >= scores[0]
    best_entry = history[int(np.argmax(scores))]
    assert (asdict(best.params), best.confidence.to_dict()) == (best_entry["params"], best_entry["confidence"])


def test_tuning_varies_confidence_parameters_only_where_the_data_can_inform_them(sample_features, tmp_path):
    base = Trial(SMALL_PARAMS, sample_features.confidence_config)
    watch_space = search_space(base, sample_features)
    assert {"skip_below", "skip_weight", "completion_weight", "w[like]"} <= set(watch_space)
    assert "rating_weight" not in watch_space
    path = tmp_path / "u.data"
    path.write_text("1\t10\t5\t100\n1\t11\t2\t101\n2\t10\t3\t102\n")
    rating_space = search_space(base, build_features_from_file(path, "movielens"))
    assert "rating_weight" in rating_space and "skip_below" not in rating_space
    assert all(base.values()[name] in choices for name, choices in watch_space.items())


def test_cli_refuses_a_relevance_threshold_outside_0_to_1_and_writes_nothing(tmp_path, sample_features, capsys):
    sample_features.save(tmp_path / "features")
    code = main(
        [
            "--features",
            str(tmp_path / "features"),
            "--models-root",
            str(tmp_path / "models"),
            "--relevant-completion",
            "1.5",
        ]
    )
    assert code == 2
    assert "relevant completion must be between 0 and 1, got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_cli_links_the_evaluation_report(tmp_path, sample_features, capsys):
    sample_features.save(tmp_path / "features")
    args = ["--features", str(tmp_path / "features"), "--models-root", str(tmp_path / "models"), "--factors", "16"]
    assert main([*args, "--regularization", "5", "--iterations", "10"]) == 0
    output = capsys.readouterr().out
    assert "relevance: satisfying watches: completion ≥ 0.8 or a complete/like/share event" in output
    report = (tmp_path / "models" / "latest" / "evaluation.html").resolve()
    assert f"evaluation report: {report.as_uri()}" in output
