"""Calling the endpoint through the `sagemaker` SDK's Predictor (SDK v2, `sagemaker<3`: v3 removed Predictor).

    python -m deploy.sagemaker_sdk_example --endpoint-name video-recommender --region eu-west-1

JSONSerializer sends `application/json`, JSONDeserializer parses the answer; the request and response shapes
are the endpoint's own (see README). `--runtime-endpoint-url` points the runtime client at another URL, such
as deploy/local_runtime.py, for trying this locally.
"""

from __future__ import annotations

import argparse
import json

import boto3
from sagemaker.deserializers import JSONDeserializer
from sagemaker.predictor import Predictor
from sagemaker.serializers import JSONSerializer
from sagemaker.session import Session


def make_predictor(
    endpoint_name: str, boto_session: boto3.Session, runtime_endpoint_url: str | None = None
) -> Predictor:
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
    parser.add_argument("--user-id", default="u001")
    args = parser.parse_args(argv)
    predictor = make_predictor(args.endpoint_name, boto3.Session(region_name=args.region), args.runtime_endpoint_url)
    print(json.dumps(predictor.predict({"user_id": args.user_id, "k": 3}), indent=2))
    print(
        json.dumps(
            predictor.predict({"instances": [{"user_id": args.user_id, "k": 2}, {"video_id": "v005"}]}), indent=2
        )
    )


if __name__ == "__main__":
    main()
