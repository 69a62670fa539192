"""Calling the endpoint through the `sagemaker` SDK, v3 (today's `pip install sagemaker`) or v2 (`sagemaker<3`).

    python deploy/sagemaker_sdk_example.py --endpoint-name video-recommender --region eu-west-1
    python deploy/sagemaker_sdk_example.py --endpoint-name tenants --target-model country-fr.tar.gz   # multi-model

SDK v3 removed `Predictor`; its resource classes call the runtime API: `sagemaker.core.resources.Endpoint`
`.invoke(body, content_type, accept, target_model=...)` answers with the raw body. SDK v2's Predictor with
JSONSerializer/JSONDeserializer does the JSON itself. The request and answer shapes are the endpoint's own (see
README). `--runtime-endpoint-url` points the runtime calls at another URL, such as sagemaker_local.runtime, for
trying this locally (v3 follows AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, which this sets, and ignores explicit clients).
"""

from __future__ import annotations

import argparse
import json
import os
from importlib import metadata
from typing import Any

import boto3

JSON = "application/json"


def sdk_major() -> int:
    return int(metadata.version("sagemaker").split(".")[0])


def invoke_v3(endpoint_name: str, payload: Any, session: boto3.Session, target_model: str | None = None) -> Any:
    """SDK v3: the endpoint as a resource; `target_model` names a multi-model endpoint's model."""
    from sagemaker.core.resources import Endpoint

    options = {"target_model": target_model} if target_model else {}
    answer = Endpoint(endpoint_name=endpoint_name).invoke(
        body=json.dumps(payload), content_type=JSON, accept=JSON, session=session, **options
    )
    return json.loads(answer.body.read())


def make_predictor(endpoint_name: str, boto_session: boto3.Session, runtime_endpoint_url: str | None = None) -> Any:
    """SDK v2: a Predictor that sends and parses JSON."""
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer
    from sagemaker.session import Session

    runtime = boto_session.client("sagemaker-runtime", endpoint_url=runtime_endpoint_url)
    session = Session(boto_session=boto_session, sagemaker_runtime_client=runtime)
    return Predictor(
        endpoint_name=endpoint_name,
        sagemaker_session=session,
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-name", default="video-recommender")
    parser.add_argument("--region")
    parser.add_argument("--runtime-endpoint-url")
    parser.add_argument("--target-model", help="a multi-model endpoint's model (SDK v3)")
    parser.add_argument("--user-id", default="u001")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    requests = [{"user_id": args.user_id, "k": 3}, {"instances": [{"user_id": args.user_id, "k": 2}]}]
    if sdk_major() >= 3:
        if args.runtime_endpoint_url:
            os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = args.runtime_endpoint_url
        answers = [invoke_v3(args.endpoint_name, request, session, args.target_model) for request in requests]
    else:
        if args.target_model:
            parser.error("--target-model: this example passes it with SDK v3")
        predictor = make_predictor(args.endpoint_name, session, args.runtime_endpoint_url)
        answers = [predictor.predict(request) for request in requests]
    for answer in answers:
        print(json.dumps(answer, indent=2))


if __name__ == "__main__":
    main()
