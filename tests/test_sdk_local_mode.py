"""The image under AWS's own emulation of SageMaker: the `sagemaker` SDK's local mode (v2 `LocalSession`), which
runs the container through docker-compose as SageMaker runs it: a training job, an endpoint, a batch transform.

The SDK is told what a machine without AWS needs: no telemetry (`TelemetryOptOut`), and `logs=False` where it
would read the job's CloudWatch logs. Its local endpoint publishes the serving port on every interface (its
choice, not ours); these tests talk to it on localhost only.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession
from sagemaker.model import Model
from sagemaker.predictor import Predictor
from sagemaker.serializers import JSONSerializer

from deploy.pipeline import NO_TELEMETRY
from sagemaker_local.transform import Job, Runner
from tests.answers import without_id
from tests.aws import client, moto_server
from tests.container import local_mode, needs_engine, serving_container
from tests.server import free_port
from vrmodels.model.artifacts import load_model_dir

pytestmark = [pytest.mark.container, needs_engine]
ROLE = "arn:aws:iam::123456789012:role/vr-local"  # local mode never assumes it
HYPERPARAMETERS = {"factors": 16, "iterations": 8, "regularization": 5}
TRANSFORM_LINES = 120_000  # over 3 MiB of requests: at least four mini-batches of at most 1 MiB
BAD_LINE = 50_000  # in the second mini-batch


@pytest.fixture(scope="module")
def session(image, tmp_path_factory) -> Iterator[LocalSession]:
    root = tmp_path_factory.mktemp("sdk-root")
    with local_mode(root):
        session = LocalSession(sagemaker_config=NO_TELEMETRY)
        session.config = {"local": {"container_root": str(root), "serving_port": free_port()}}
        yield session


@pytest.fixture(scope="module")
def estimator(session, image, sample_events, tmp_path_factory) -> Estimator:
    """A local training job: the image's `train` on a CSV channel, as `Estimator.fit` runs it."""
    channel = tmp_path_factory.mktemp("training-channel")
    sample_events.to_csv(channel / "events.csv", index=False)
    output = tmp_path_factory.mktemp("training-output")
    estimator = Estimator(
        image_uri=image,
        role=ROLE,
        instance_count=1,
        instance_type="local",
        output_path=f"file://{output}",
        hyperparameters=HYPERPARAMETERS,
        sagemaker_session=session,
    )
    estimator.fit({"training": f"file://{channel}"}, logs=False)
    return estimator


@pytest.fixture(scope="module")
def model(estimator, session, image) -> Model:
    return Model(
        image_uri=image,
        model_data=estimator.model_data,
        role=ROLE,
        predictor_cls=Predictor,
        sagemaker_session=session,
    )


@pytest.fixture(scope="module")
def trained_dir(estimator, tmp_path_factory) -> Path:
    """The training job's model.tar.gz, unpacked as SageMaker unpacks it into /opt/ml/model."""
    directory = tmp_path_factory.mktemp("trained-model")
    with tarfile.open(estimator.model_data.removeprefix("file://")) as archive:
        archive.extractall(directory, filter="data")
    directory.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def transform_input(sample_events, tmp_path_factory) -> tuple[Path, list[str]]:
    users = sample_events["user_id"].drop_duplicates().tolist()
    asked = [users[index % len(users)] for index in range(TRANSFORM_LINES)]
    lines = [json.dumps({"user_id": user, "k": 3}) for user in asked]
    lines[BAD_LINE] = '{"user_id": "u001", "k": '
    directory = tmp_path_factory.mktemp("transform-in")
    (directory / "requests.jsonl").write_text("\n".join(lines) + "\n")
    return directory, asked


def test_a_local_training_job_trains_the_image_on_a_channel_with_the_estimator_s_hyperparameters(estimator):
    assert estimator.latest_training_job.describe()["TrainingJobStatus"] == "Completed"
    assert estimator.model_data.endswith("/model.tar.gz")


def test_the_trained_archive_is_a_model_directory(trained_dir):
    manifest = load_model_dir(trained_dir).manifest
    assert {name: manifest.parameters[name] for name in HYPERPARAMETERS} == HYPERPARAMETERS


def test_a_local_endpoint_answers_the_known_shape_and_names_a_missing_field(model, sample_events):
    user = sample_events["user_id"].iloc[0]
    predictor = model.deploy(
        initial_instance_count=1, instance_type="local", serializer=JSONSerializer(), deserializer=JSONDeserializer()
    )
    try:
        answer = predictor.predict({"user_id": user, "k": 3})
        refused = predictor.predict({"k": 3})  # local mode hands a 4xx body back instead of raising
    finally:
        predictor.delete_endpoint()
    assert answer["userId"] == user
    assert len(answer["recommendations"]) == 3
    assert set(answer["recommendations"][0]) == {"videoId", "score"}
    assert refused["error"]["status"] == 422 and "user_id" in refused["error"]["message"]


def run_sdk_transform(model: Model, input_dir: Path, output_dir: Path) -> bytes:
    """A local batch transform of JSON Lines, mini-batches of at most 1 MB, each answer followed by a newline."""
    transformer = model.transformer(
        instance_count=1,
        instance_type="local",
        strategy="MultiRecord",  # local mode reads no MULTI_RECORD from /execution-parameters (AWS's own spelling)
        assemble_with="Line",
        max_payload=1,
        accept="application/jsonlines",
        output_path=f"file://{output_dir}",
    )
    transformer.transform(f"file://{input_dir}", content_type="application/jsonlines", split_type="Line", logs=False)
    return (output_dir / "requests.jsonl.out").read_bytes()


@pytest.fixture(scope="module")
def sdk_output(model, transform_input, tmp_path_factory) -> bytes:
    return run_sdk_transform(model, transform_input[0], tmp_path_factory.mktemp("transform-out"))


def test_a_local_batch_transform_answers_each_line_in_its_slot_over_several_mini_batches(transform_input, sdk_output):
    input_dir, asked = transform_input
    assert (input_dir / "requests.jsonl").stat().st_size > 3 * 1024 * 1024  # so four mini-batches or more
    text = sdk_output.decode()
    assert text.endswith("}\n") and "\n\n" not in text  # no empty line after any mini-batch
    answers = [json.loads(line) for line in text.splitlines()]
    assert len(answers) == TRANSFORM_LINES
    assert answers[BAD_LINE]["error"]["status"] == 400
    served = [answer.get("userId") for answer in answers]
    assert served[:BAD_LINE] == asked[:BAD_LINE] and served[BAD_LINE + 1 :] == asked[BAD_LINE + 1 :]


@pytest.fixture(scope="module")
def s3() -> Iterator[object]:
    for url in moto_server():
        yield client(url, "s3")


@pytest.fixture(scope="module")
def batch_container(image, trained_dir):
    """The same trained model, served as SageMaker serves a transform job's container."""
    yield from serving_container(
        image, "vr-test-sdk-batch", "-e", "SAGEMAKER_BATCH=true", "-v", f"{trained_dir}:/opt/ml/model:ro"
    )


def test_our_transform_runner_writes_what_local_mode_writes(batch_container, transform_input, sdk_output, s3):
    """Line for line, each answer's own random recommendationId aside, but the bad line's message, which names its
    line within its mini-batch: the SDK packs a few lines fewer per mini-batch (it counts each line's newline and
    a Python string's header against the limit)."""
    s3.create_bucket(Bucket="vr-sdk")
    s3.upload_file(str(transform_input[0] / "requests.jsonl"), "vr-sdk", "in/requests.jsonl")
    report = Runner(batch_container.url, Job("s3://vr-sdk/in/", "s3://vr-sdk/out/", max_payload_mb=1), s3).run()
    assert report.as_dict()["status"] == "Completed" and report.as_dict()["mini_batches"] >= 4
    ours = s3.get_object(Bucket="vr-sdk", Key="out/requests.jsonl.out")["Body"].read().split(b"\n")
    theirs = sdk_output.split(b"\n")
    assert json.loads(ours.pop(BAD_LINE))["error"]["status"] == json.loads(theirs.pop(BAD_LINE))["error"]["status"]
    assert len(ours) == len(theirs) and ours[-1] == theirs[-1] == b""  # the newline after the last answer
    differing = [
        number
        for number, (mine, sdk) in enumerate(zip(ours[:-1], theirs[:-1]))
        if without_id(json.loads(mine)) != without_id(json.loads(sdk))
    ]
    assert not differing, f"{len(differing)} lines differ, first {ours[differing[0]]!r} and {theirs[differing[0]]!r}"
