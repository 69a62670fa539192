"""TEST-ONLY extension of moto: SageMaker `UpdateEndpoint`, which moto 5.2 does not implement.

It does what the real API does to the state the tests inspect: the endpoint switches to the new endpoint
config and its production variants. Registered on moto's own backend and response classes so the real aws CLI
and boto3 reach it through moto's server; nothing of this ships with the product.
"""

from __future__ import annotations

from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse


def _update_endpoint(self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str) -> FakeEndpoint:
    if endpoint_name not in self.endpoints:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    config = self.describe_endpoint_config(endpoint_config_name)
    endpoint = self.endpoints[endpoint_name]
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.last_modified_time = utcnow()
    return endpoint


def _update_endpoint_response(self: SageMakerResponse):
    from moto.core.responses import ActionResult

    endpoint = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"), self._get_param("EndpointConfigName")
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def install() -> None:
    SageMakerModelBackend.update_endpoint = _update_endpoint
    SageMakerResponse.update_endpoint = _update_endpoint_response
