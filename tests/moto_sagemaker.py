"""TEST-ONLY extensions of moto 5.2's SageMaker, for the deploy tests (nothing of this ships with the product).

- `UpdateEndpoint`, which moto does not implement: the endpoint switches to the new endpoint config and its
  production variants, and records the `DeploymentConfig` (blue/green guardrails) as the real API reports it,
  in `LastDeploymentConfig`.
- `ShadowProductionVariants` on `CreateEndpointConfig`, which moto drops: kept and described.
Registered on moto's own backend and response classes, so the real aws CLI and boto3 reach them through moto's
server.
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

_create_endpoint_config = SageMakerResponse.create_endpoint_config


def _update_endpoint(
    self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str, deployment_config: dict | None
) -> FakeEndpoint:
    if endpoint_name not in self.endpoints:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    config = self.describe_endpoint_config(endpoint_config_name)
    endpoint = self.endpoints[endpoint_name]
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.last_deployment_config = deployment_config
    endpoint.last_modified_time = utcnow()
    return endpoint


def _update_endpoint_response(self: SageMakerResponse) -> ActionResult:
    endpoint = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"), self._get_param("EndpointConfigName"), self._get_param("DeploymentConfig")
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _create_endpoint_config_response(self: SageMakerResponse) -> ActionResult:
    result = _create_endpoint_config(self)
    shadows = self._get_param("ShadowProductionVariants")
    if shadows:
        self.sagemaker_backend.endpoint_configs[
            self._get_param("EndpointConfigName")
        ].shadow_production_variants = shadows
    return result


def install() -> None:
    SageMakerModelBackend.update_endpoint = _update_endpoint
    SageMakerResponse.update_endpoint = _update_endpoint_response
    SageMakerResponse.create_endpoint_config = _create_endpoint_config_response
