"""A small Python client for the deployed endpoint (boto3 `sagemaker-runtime`), with retries.

    from deploy.client import RecommenderClient
    client = RecommenderClient("video-recommender", region_name="eu-west-1")
    client.recommend("u001", k=3)   # {"userId": "u001", "recommendations": [...]}

Throttling and transient faults are retried (botocore "standard" mode). A 4xx/5xx from the container reaches
SageMaker callers as `ModelError`; it is raised here as `RecommenderModelError` carrying the container's own
status and message (e.g. 404 for an unknown video), which are what a caller can act on.

With two production variants (deploy.sh --candidate-image-uri), `target_variant` sends a request to one of them,
and `answer()` tells which variant answered and the model version its container reports. On a multi-model
endpoint (deploy.sh --multi-model), `target_model` names the model: its key under the endpoint's S3 prefix.

    tenant = RecommenderClient("tenants", target_model="country-fr.tar.gz")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

JSON = "application/json"


class RecommenderModelError(RuntimeError):
    def __init__(self, status: int, message: str, log_stream: str | None):
        super().__init__(f"the model container answered {status}: {message}")
        self.status, self.message, self.log_stream = status, message, log_stream


@dataclass(frozen=True)
class Answer:
    body: Any
    variant: str | None
    """The production variant that answered (SageMaker's InvokedProductionVariant)."""
    model_version: str | None
    """The model version the container reported (its custom attribute model-version)."""


class RecommenderClient:
    def __init__(
        self,
        endpoint_name: str,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        timeout_seconds: float = 65.0,
        session: boto3.Session | None = None,
        target_variant: str | None = None,
        target_model: str | None = None,
    ):
        """`target_variant`: send every request to this production variant (default: SageMaker's weighted choice);
        `target_model`: on a multi-model endpoint, the model every request goes to."""
        config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            read_timeout=timeout_seconds,
            connect_timeout=5,
        )
        self.endpoint_name = endpoint_name
        self.target_variant = target_variant
        self.target_model = target_model
        self._runtime = (session or boto3.Session()).client(
            "sagemaker-runtime", region_name=region_name, endpoint_url=endpoint_url, config=config
        )

    def invoke(self, payload: dict[str, Any], custom_attributes: str | None = None) -> dict[str, Any]:
        return self.answer(payload, custom_attributes).body

    def answer(
        self,
        payload: dict[str, Any],
        custom_attributes: str | None = None,
        target_variant: str | None = None,
        target_model: str | None = None,
    ) -> Answer:
        """The endpoint's answer, with the variant and model version that produced it."""
        extra: dict[str, str] = {}
        if custom_attributes:
            extra["CustomAttributes"] = custom_attributes
        if target_variant or self.target_variant:
            extra["TargetVariant"] = target_variant or self.target_variant  # type: ignore[assignment]
        if target_model or self.target_model:
            extra["TargetModel"] = target_model or self.target_model  # type: ignore[assignment]
        try:
            response = self._runtime.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType=JSON,
                Accept=JSON,
                Body=json.dumps(payload).encode(),
                **extra,
            )
        except self._runtime.exceptions.ModelError as error:
            details = error.response
            raise RecommenderModelError(
                int(details.get("OriginalStatusCode", 0)),
                details.get("OriginalMessage", str(error)),
                details.get("LogStreamArn"),
            ) from error
        attributes = dict(part.split("=", 1) for part in response.get("CustomAttributes", "").split(";") if "=" in part)
        return Answer(
            json.loads(response["Body"].read()),
            response.get("InvokedProductionVariant"),
            attributes.get("model-version"),
        )

    def recommend(self, user_id: str, k: int = 10, **options: Any) -> dict[str, Any]:
        """Options as the endpoint takes them: exclude_watched, exclude, candidates, history."""
        return self.invoke({"user_id": user_id, "k": k, **options})

    def similar(self, video_id: str, k: int = 10) -> dict[str, Any]:
        return self.invoke({"video_id": video_id, "k": k})

    def recommend_many(self, user_ids: list[str], k: int = 10) -> list[dict[str, Any]]:
        """One request for many users (the endpoint batches them); errors come back in their slots."""
        return self.invoke({"instances": [{"user_id": user_id, "k": k} for user_id in user_ids]})["predictions"]
