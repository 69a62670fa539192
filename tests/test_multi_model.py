"""Multi-model mode (SAGEMAKER_MULTI_MODEL=true): SageMaker's /models contract, in-process through the real app.

What needs several worker processes (a load on one worker answered by another, unload under load) is in
test_multi_model_server.py.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from serving.app import create_app
from serving.models import MIB, files_bytes
from serving.settings import Settings
from tests import emf
from tests.answers import without_id
from tests.server import json_lines
from vrmodels.model.manifest import FORMAT_VERSION

JSON = {"Content-Type": "application/json"}


def models_root(tmp_path: Path, model_dir: Path, *names: str) -> Path:
    """A models root as SageMaker lays it out: each model unpacked under <root>/<name>/model."""
    root = tmp_path / "models"
    for name in names:
        shutil.copytree(model_dir, root / name / "model")
    root.mkdir(exist_ok=True)
    return root


def model_size_mb(model_dir: Path) -> float:
    """What loading the model counts against VR_MULTI_MODEL_MEMORY_MB: its files."""
    return files_bytes(model_dir) / MIB


def settings(root: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"SAGEMAKER_MULTI_MODEL": "true", "VR_MULTI_MODEL_ROOT": str(root), "VR_VARIANT": "blue", **env}
    )


def load(client: TestClient, name: str, url: Path | str) -> object:
    return client.post("/models", content=json.dumps({"model_name": name, "url": str(url)}), headers=JSON)


def invoke(client: TestClient, name: str, payload: object, headers: dict = JSON) -> object:
    return client.post(f"/models/{name}/invoke", content=json.dumps(payload), headers=headers)


def mapped_files(directory: Path) -> list[str]:
    """This process's memory mappings of files under `directory`."""
    with open("/proc/self/maps") as maps:
        return [line for line in maps if str(directory.resolve()) in line]


@pytest.fixture
def root(tmp_path, model_dir, platform_model_dir):
    root = models_root(tmp_path, model_dir, "als-a", "als-b", "als-c")
    shutil.copytree(platform_model_dir, root / "two-stage" / "model")
    return root


@pytest.fixture
def client(root):
    with TestClient(create_app(settings(root))) as http:
        yield http


def test_ping_is_200_before_any_model_is_loaded(client):
    assert client.get("/ping").status_code == 200
    assert client.get("/models").json() == {"models": []}


def test_a_loaded_model_answers_exactly_as_the_single_model_server(client, root, model_dir):
    assert load(client, "als-a", root / "als-a" / "model").status_code == 200
    with TestClient(
        create_app(Settings.from_env({"VR_MODEL_DIR": str(model_dir), "VR_OPT_ML": "/nonexistent"}))
    ) as one:
        for payload in ({"user_id": "u001", "k": 3}, {"instances": [{"history": ["v005"], "k": 4}, {"k": 0}]}):
            multi, single = invoke(client, "als-a", payload), one.post("/invocations", json=payload)
            assert (multi.status_code, without_id(multi.json())) == (single.status_code, without_id(single.json()))
        lines = b'{"user_id": "u002", "k": 2}\n{"video_id": "nope", "k": 2}\n'
        multi = client.post("/models/als-a/invoke", content=lines, headers={"Content-Type": "application/jsonlines"})
        single = one.post("/invocations", content=lines, headers={"Content-Type": "application/jsonlines"})
        assert multi.status_code == single.status_code
        assert [without_id(json.loads(line)) for line in multi.text.split("\n")] == [
            without_id(json.loads(line)) for line in single.text.split("\n")
        ]
    assert multi.headers["x-model-version"] == single.headers["x-model-version"]


def test_a_bad_request_to_a_loaded_model_gets_the_same_4xx_naming_the_field(client, root):
    load(client, "als-a", root / "als-a" / "model")
    response = invoke(client, "als-a", {"user_id": "u001", "k": 0})
    assert response.status_code == 422
    assert "k" in response.json()["error"]["message"]
    assert client.post("/models/als-a/invoke", content=b"{", headers=JSON).status_code == 400
    assert invoke(client, "als-a", {"user_id": "u001"}, {"Content-Type": "text/csv"}).status_code == 415


def test_models_are_listed_described_and_paged_by_name(client, root):
    for name in ("als-c", "als-a", "als-b"):
        assert load(client, name, root / name / "model").status_code == 200
    first = client.get("/models", params={"limit": 2}).json()
    assert [model["modelName"] for model in first["models"]] == ["als-a", "als-b"]
    rest = client.get("/models", params={"limit": 2, "next_page_token": first["nextPageToken"]}).json()
    assert [model["modelName"] for model in rest["models"]] == ["als-c"] and "nextPageToken" not in rest
    assert client.get("/models/als-b").json() == {"modelName": "als-b", "modelUrl": str(root / "als-b" / "model")}
    assert client.get("/models", params={"limit": 0}).status_code == 400
    assert client.get("/models", params={"next_page_token": "x"}).status_code == 400
    for digit in ("²", "٣"):  # digits to str.isdigit, not to int
        assert client.get("/models", params={"next_page_token": digit}).status_code == 400
        assert client.get("/models", params={"limit": digit}).status_code == 400


def test_loading_a_loaded_name_again_is_409(client, root):
    assert load(client, "als-a", root / "als-a" / "model").status_code == 200
    response = load(client, "als-a", root / "als-b" / "model")
    assert response.status_code == 409
    assert "already loaded" in response.json()["error"]["message"]


def test_unknown_models_are_404_on_every_route(client):
    assert invoke(client, "missing", {"user_id": "u001"}).status_code == 404
    assert client.get("/models/missing").status_code == 404
    assert client.delete("/models/missing").status_code == 404


def test_invocations_is_404_in_multi_model_mode_naming_the_route_to_use(client):
    response = client.post("/invocations", json={"user_id": "u001"})
    assert response.status_code == 404
    assert "/models/{name}/invoke" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        (b"not json", "JSON"),
        (b"[]", "model_name"),
        (json.dumps({"url": "/x"}).encode(), "model_name"),
        (json.dumps({"model_name": "a"}).encode(), "url"),
        (json.dumps({"model_name": "", "url": "/x"}).encode(), "model_name"),
        (json.dumps({"model_name": "a", "url": "/opt/ml/models/a\u0000"}).encode(), "url"),
    ],
)
def test_a_malformed_load_request_is_400_naming_the_field(client, body, field):
    response = client.post("/models", content=body, headers=JSON)
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]


def test_a_url_outside_the_models_root_is_403_before_anything_is_read(client, root, tmp_path, model_dir):
    outside = load(client, "escape", model_dir)
    assert outside.status_code == 403
    assert "outside the models root" in outside.json()["error"]["message"]
    assert load(client, "absent", tmp_path / "elsewhere" / "absent").status_code == 403  # not even looked for
    assert load(client, "dots", root / ".." / "elsewhere").status_code == 403
    (root / "link").symlink_to(model_dir)
    assert load(client, "link", root / "link").status_code == 403
    assert client.get("/models").json() == {"models": []}


def test_a_corrupt_or_half_unpacked_model_is_refused_naming_the_file_and_nothing_stays_loaded(client, root):
    factors = root / "als-a" / "model" / "item_factors.npy"
    original = factors.read_bytes()
    factors.write_bytes(original[:-64])
    response = load(client, "als-a", root / "als-a" / "model")
    assert response.status_code == 422
    assert "item_factors.npy" in response.json()["error"]["message"]
    assert client.get("/models").json() == {"models": []}
    assert invoke(client, "als-a", {"user_id": "u001"}).status_code == 404
    assert mapped_files(root / "als-a") == []
    factors.unlink()  # a file that vanished (SageMaker's unpacking cut short, a cleanup racing the load)
    response = load(client, "als-a", root / "als-a" / "model")
    assert response.status_code == 422 and "item_factors.npy: missing" in response.json()["error"]["message"]
    assert client.get("/models").json() == {"models": []} and mapped_files(root / "als-a") == []
    factors.write_bytes(original)
    assert load(client, "als-a", root / "als-a" / "model").status_code == 200  # the name was given back
    assert load(client, "empty", root).status_code == 422  # a directory that is no model


def test_the_memory_budget_answers_507_until_a_model_is_unloaded(root, model_dir):
    budget = f"{model_size_mb(model_dir) * 1.5:.3f}"
    with TestClient(create_app(settings(root, VR_MULTI_MODEL_MEMORY_MB=budget))) as client:
        assert load(client, "als-a", root / "als-a" / "model").status_code == 200
        refused = load(client, "als-b", root / "als-b" / "model")
        assert refused.status_code == 507
        assert "VR_MULTI_MODEL_MEMORY_MB" in refused.json()["error"]["message"]
        assert client.delete("/models/als-a").status_code == 200
        assert load(client, "als-b", root / "als-b" / "model").status_code == 200


def test_an_unloaded_model_is_404_and_its_files_are_no_longer_mapped(client, root):
    assert load(client, "als-a", root / "als-a" / "model").status_code == 200
    assert invoke(client, "als-a", {"history": ["v005"], "k": 3}).status_code == 200  # scored: every array touched
    assert mapped_files(root / "als-a")
    assert client.delete("/models/als-a").status_code == 200
    assert invoke(client, "als-a", {"user_id": "u001"}).status_code == 404
    assert client.get("/models").json() == {"models": []}
    assert mapped_files(root / "als-a") == []


def test_a_two_stage_model_serves_its_catalogue_filters(client, root):
    assert load(client, "two-stage", root / "two-stage" / "model").status_code == 200
    response = invoke(client, "two-stage", {"user_id": "u0001", "k": 5, "max_per_channel": 1})
    assert response.status_code == 200 and len(response.json()["recommendations"]) == 5


def test_info_describes_every_loaded_model(client, root):
    load(client, "als-a", root / "als-a" / "model")
    load(client, "two-stage", root / "two-stage" / "model")
    models = {model["modelName"]: model for model in client.get("/info").json()["models"]}
    assert models["als-a"]["serving"]["twoStage"] is False
    assert models["two-stage"]["serving"]["twoStage"] is True
    assert models["two-stage"]["evaluation"]["split"] == "time"
    assert models["als-a"]["formatVersion"] == FORMAT_VERSION and models["als-a"]["users"] > 0


def test_metrics_carry_the_target_model_and_loads_are_timed(root, capsys, caplog):
    caplog.set_level(logging.INFO)
    capsys.readouterr()
    with TestClient(create_app(settings(root))) as client:
        load(client, "als-a", root / "als-a" / "model")
        target = JSON | {"X-Amzn-SageMaker-Target-Model": "fr/als.tar.gz"}
        invoke(client, "als-a", {"user_id": "u001", "k": 3}, target)
    lines = json_lines(capsys.readouterr().out)
    (published,) = emf.published(lines)  # at shutdown
    assert emf.metric_values(published, ("ModelName", "ModelVersion", "Variant"))["Latency"]["Count"] == 1
    assert published["ModelName"] == "fr/als.tar.gz"
    loaded = next(vars(record) for record in caplog.records if record.getMessage() == "model loaded")
    assert emf.metric_values(loaded, ("ModelName", "Variant"))["ModelLoadTime"] > 0
    assert emf.metric_values(loaded, ("Variant",))["LoadedModels"] == 1
