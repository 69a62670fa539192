"""Requests narrowed by the catalogue (categories, a per-channel cap, publication time), through the real app."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from serving.app import create_app
from serving.settings import Settings
from vrmodels.model.artifacts import load_model_dir


@pytest.fixture(scope="module")
def client(platform_model_dir, tmp_path_factory):
    settings = Settings(opt_ml=tmp_path_factory.mktemp("no-opt-ml"), fallback_model_dir=platform_model_dir)
    with TestClient(create_app(settings)) as http:
        yield http


@pytest.fixture(scope="module")
def catalogue(platform_model_dir) -> dict[str, dict]:
    artifacts = load_model_dir(platform_model_dir)
    tables = artifacts.tables
    return {
        video: {"category": tables.category_names[category], "channel": channel, "published": published}
        for video, category, channel, published in zip(
            artifacts.videos.all_ids(), tables.categories, tables.channels.tolist(), tables.published.tolist()
        )
    }


def invoke(client, payload):
    return client.post("/invocations", json=payload)


def test_the_known_request_still_gets_the_known_answer_shape(client):
    body = invoke(client, {"user_id": "u001", "k": 3}).json()
    assert list(body) == ["userId", "recommendations", "recommendationId"] and len(body["recommendations"]) == 3


def test_categories_cap_and_publication_time_narrow_the_answer(client, catalogue):
    videos = lambda body: [item["videoId"] for item in body["recommendations"]]  # noqa: E731
    music = invoke(client, {"user_id": "u002", "k": 4, "categories": ["music", "nonsense"]}).json()
    assert {catalogue[video]["category"] for video in videos(music)} == {"music"}
    assert music["unknownCategories"] == ["nonsense"]
    capped = invoke(client, {"history": ["v010", "v011"], "k": 8, "max_per_channel": 1}).json()
    channels = [catalogue[video]["channel"] for video in videos(capped)]
    assert len(channels) == 8 and len(set(channels)) == 8
    recent = invoke(client, {"user_id": "u003", "k": 3, "published_after": "2025-02-20T00:00:00Z"}).json()
    assert videos(recent) and all(catalogue[video]["published"] > 1_740_009_600 for video in videos(recent))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"user_id": "u001", "published_after": "last week"}, "published_after"),
        ({"user_id": "u001", "categories": []}, "categories"),
        ({"user_id": "u001", "categories": "music"}, "categories"),
        ({"user_id": "u001", "max_per_channel": 0}, "max_per_channel"),
    ],
)
def test_bad_narrowing_is_422_naming_the_field(client, payload, field):
    response = invoke(client, payload)
    assert response.status_code == 422 and response.json()["error"]["message"].startswith(field)


def test_a_model_without_a_catalogue_answers_narrowing_with_422_in_the_slot(model_dir, tmp_path):
    with TestClient(create_app(Settings(opt_ml=tmp_path, fallback_model_dir=model_dir))) as plain:
        single = invoke(plain, {"user_id": "u001", "categories": ["music"]})
        assert single.status_code == 422
        assert single.json()["error"]["message"].startswith("categories: this model was trained without a video")
        batch = invoke(plain, {"instances": [{"user_id": "u001", "k": 2}, {"user_id": "u001", "max_per_channel": 1}]})
        first, refused = batch.json()["predictions"]
        assert len(first["recommendations"]) == 2 and refused["error"]["status"] == 422
