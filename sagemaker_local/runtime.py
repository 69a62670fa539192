#!/usr/bin/env python3
"""A local stand-in for the SageMaker runtime API, forwarding to real containers (a local-testing tool).

    python -m sagemaker_local.runtime --port 9000 --endpoint video-recommender=http://127.0.0.1:8080
    python -m sagemaker_local.runtime --port 9000 --endpoint vr/AllTraffic=http://127.0.0.1:8080 \\
        --endpoint vr/Candidate=http://127.0.0.1:8081 --weight vr/Candidate=0.1 --capture-dir capture/
    python -m sagemaker_local.runtime --port 9000 --endpoint tenants=http://127.0.0.1:8080 \\
        --model-data tenants=s3://bucket/models/ --models-dir tenants=/srv/opt-ml-models     # multi-model
    python -m sagemaker_local.runtime --port 9000 --endpoint nightly=http://127.0.0.1:8080 \\
        --async-output nightly=s3://bucket/async/out/ --async-failure nightly=s3://bucket/async/failed/
    aws sagemaker-runtime invoke-endpoint --endpoint-url http://127.0.0.1:9000 \\
        --endpoint-name video-recommender --content-type application/json --body fileb://req.json out.json

`POST /endpoints/{name}/invocations` goes to one production variant's `<container>/invocations`: the one named by
X-Amzn-SageMaker-Target-Variant, else one drawn by weight; the answer names it in
x-Amzn-Invoked-Production-Variant. Content-Type, Accept and X-Amzn-SageMaker-Custom-Attributes pass through. As
on SageMaker, a container 4xx/5xx becomes HTTP 424 with `x-amzn-ErrorType: ModelError` and
OriginalStatusCode/OriginalMessage (boto3 raises `ModelError`); an unknown endpoint or variant a
`ValidationError`. With --capture-dir, every invocation is also written as SageMaker's data capture writes it
(JSON Lines under <endpoint>/<variant>/yyyy/mm/dd/hh/), for `python -m vrmodels.drift`.

A multi-model endpoint (--model-data, --models-dir: the host directory the container mounts as /opt/ml/models)
needs X-Amzn-SageMaker-Target-Model: the model is fetched, unpacked and loaded on first use, the least recently
used unloaded when the container is full (sagemaker_local.models), and the request goes to
`/models/<name>/invoke`. An endpoint with --async-output also takes `POST /endpoints/{name}/async-invocations`
(InvokeEndpointAsync: sagemaker_local.async_inference). S3 through boto3 (AWS_ENDPOINT_URL points it at moto). Requests
are not authenticated. Binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import re
import sys
import threading
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sagemaker_local.async_inference import DEFAULT_TIMEOUT, MAX_TIMEOUT, AsyncQueue
from sagemaker_local.models import ModelHost, TargetModelError

ROUTE = re.compile(r"^/endpoints/([^/]+)/(invocations|async-invocations)$")
PASSED_HEADERS = (
    "Content-Type",
    "Accept",
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-Inference-Id",
    "X-Amzn-SageMaker-Target-Model",
)
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"
DEFAULT_VARIANT = "AllTraffic"
CAPTURED_AS_JSON = ("application/json", "application/jsonlines")
ACCOUNT = "123456789012"
MAX_PAYLOAD = 6 * 1024 * 1024


class Endpoint:
    """An endpoint's production variants: container URL and traffic weight each; for a multi-model endpoint, its
    model host (one per variant); for asynchronous inference, its queue."""

    def __init__(
        self,
        variants: dict[str, str],
        weights: dict[str, float] | None = None,
        models: dict[str, ModelHost] | None = None,
        queue: AsyncQueue | None = None,
    ):
        self.urls = variants
        self.weights = {name: (weights or {}).get(name, 1.0) for name in variants}
        self.models = models or {}
        self.queue = queue

    def choose(self, target: str | None) -> str | None:
        if target:
            return target if target in self.urls else None
        names = [name for name, weight in self.weights.items() if weight > 0]
        return random.choices(names, weights=[self.weights[name] for name in names])[0]


class Capture:
    """Invocations written as SageMaker's data capture writes them: one JSON object per line."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._lock = threading.Lock()

    def write(
        self,
        endpoint: str,
        variant: str,
        request: tuple[str, bytes],
        answer: tuple[str, bytes],
        *,
        now: datetime | None = None,
    ) -> None:
        """`now`: when it was served (a simulated platform's clock; the wall clock by default)."""
        now = now or datetime.now(UTC)
        record = {
            "captureData": {
                "endpointInput": _captured("INPUT", *request),
                "endpointOutput": _captured("OUTPUT", *answer),
            },
            "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "eventVersion": "0",
        }
        folder = self.directory / endpoint / variant / now.strftime("%Y/%m/%d/%H")
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / f"{now:%M}-capture.jsonl").open("a") as handle:
                handle.write(json.dumps(record) + "\n")


def _captured(mode: str, content_type: str, body: bytes) -> dict:
    as_json = content_type.split(";")[0].strip().lower() in CAPTURED_AS_JSON
    data = body.decode("utf-8", "replace") if as_json else base64.b64encode(body).decode()
    return {
        "observedContentType": content_type,
        "mode": mode,
        "data": data,
        "encoding": "JSON" if as_json else "BASE64",
    }


def make_handler(
    targets: dict[str, Endpoint], timeout: float, capture: Capture | None = None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            request_id = str(uuid.uuid4())
            match = ROUTE.match(self.path.split("?", 1)[0])
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not match:
                return self._error(404, "UnknownOperationException", f"no such operation: POST {self.path}", request_id)
            name = urllib.request.unquote(match.group(1))
            if name not in targets:
                message = f"Endpoint {name} of account {ACCOUNT} not found."
                return self._error(400, "ValidationError", message, request_id)
            if len(body) > MAX_PAYLOAD:
                return self._error(413, "ValidationError", "Request payload exceeds 6291456 bytes", request_id)
            endpoint = targets[name]
            variant = endpoint.choose(self.headers.get(TARGET_VARIANT))
            if variant is None:
                message = f"Variant {self.headers[TARGET_VARIANT]} not found for Endpoint {name} of account {ACCOUNT}."
                return self._error(400, "ValidationError", message, request_id)
            if match.group(2) == "async-invocations":
                return self._async(name, endpoint, variant, request_id)
            url = f"{endpoint.urls[variant]}/invocations"
            host = endpoint.models.get(variant)
            if host is not None:
                target = self.headers.get(TARGET_MODEL)
                if not target:
                    message = f"Endpoint {name} is a multi-model endpoint: TargetModel is required."
                    return self._error(400, "ValidationError", message, request_id)
                try:
                    url = host.invoke_url(target)
                except TargetModelError as failure:
                    if failure.kind == "ModelError":
                        return self._model_error(name, failure.status, failure.message, request_id)
                    return self._error(failure.status, failure.kind, failure.message, request_id)
            forwarded = urllib.request.Request(url, data=body, method="POST")
            for header in PASSED_HEADERS:
                if self.headers.get(header):
                    forwarded.add_header(header, self.headers[header])
            request = (self.headers.get("Content-Type", ""), body)
            try:
                with urllib.request.urlopen(forwarded, timeout=timeout) as answer:
                    content = answer.read()
                    if capture:
                        capture.write(name, variant, request, (answer.headers.get("Content-Type", ""), content))
                    return self._reply(200, content, answer.headers, request_id, variant)
            except urllib.error.HTTPError as failure:
                message = failure.read().decode("utf-8", "replace")
                return self._model_error(name, failure.code, message, request_id)
            except (urllib.error.URLError, TimeoutError) as failure:
                return self._error(500, "InternalFailure", f"container of {name} did not answer: {failure}", request_id)

        def _async(self, name: str, endpoint: Endpoint, variant: str, request_id: str) -> None:
            if endpoint.queue is None:
                message = f"Endpoint {name} is not configured for asynchronous inference (AsyncInferenceConfig)."
                return self._error(400, "ValidationError", message, request_id)
            location = self.headers.get("X-Amzn-SageMaker-InputLocation", "")
            headers = {
                "Content-Type": self.headers.get("X-Amzn-SageMaker-Content-Type", "application/json"),
                "Accept": self.headers.get("X-Amzn-SageMaker-Accept", "application/json"),
            }
            inference_id = self.headers.get("X-Amzn-SageMaker-Inference-Id") or request_id
            timeout = float(self.headers.get("X-Amzn-SageMaker-InvocationTimeoutSeconds") or DEFAULT_TIMEOUT)
            if not 1 <= timeout <= MAX_TIMEOUT:
                message = f"InvocationTimeoutSeconds must be between 1 and {MAX_TIMEOUT:g}, got {timeout:g}."
                return self._error(400, "ValidationError", message, request_id)
            try:
                output, failure = endpoint.queue.submit(
                    endpoint.urls[variant], location, headers, inference_id, timeout
                )
            except Exception as error:  # a malformed location, or no such object
                return self._error(400, "ValidationError", f"InputLocation {location!r}: {error}", request_id)
            data = json.dumps({"InferenceId": inference_id}).encode()
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Amzn-SageMaker-OutputLocation", output)
            self.send_header("X-Amzn-SageMaker-FailureLocation", failure)
            self.send_header("x-amzn-RequestId", request_id)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _reply(self, status: int, body: bytes, headers, request_id: str, variant: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", headers.get("Content-Type", "application/octet-stream"))
            self.send_header("x-Amzn-Invoked-Production-Variant", variant)
            self.send_header("x-amzn-RequestId", request_id)
            if headers.get("X-Amzn-SageMaker-Custom-Attributes"):
                self.send_header("X-Amzn-SageMaker-Custom-Attributes", headers["X-Amzn-SageMaker-Custom-Attributes"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _model_error(self, name: str, status: int, message: str, request_id: str) -> None:
            kind = "client" if status < 500 else "server"
            body = {
                "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
                "LogStreamArn": f"arn:aws:logs:local:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{name}",
                "Message": f'Received {kind} error ({status}) from primary with message "{message}".',
                "OriginalMessage": message,
                "OriginalStatusCode": status,
            }
            self._json(424, "ModelError", body, request_id)

        def _error(self, status: int, kind: str, message: str, request_id: str) -> None:
            self._json(status, kind, {"message": message}, request_id)

        def _json(self, status: int, kind: str, document: dict, request_id: str) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-ErrorType", f"{kind}:http://internal.amazon.com/coral/com.amazon.sagemaker/")
            self.send_header("x-amzn-RequestId", request_id)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # one JSON line per request
            print(json.dumps({"route": self.path, "status": args[1] if len(args) > 1 else None}), flush=True)

    return Handler


def serve(
    targets: dict[str, str | Endpoint], port: int, timeout: float = 60.0, capture_dir: Path | None = None
) -> ThreadingHTTPServer:
    """`targets`: endpoint name → container URL (one variant, AllTraffic) or Endpoint (several)."""
    endpoints = {
        name: target if isinstance(target, Endpoint) else Endpoint({DEFAULT_VARIANT: target})
        for name, target in targets.items()
    }
    capture = Capture(capture_dir) if capture_dir else None
    return ThreadingHTTPServer(("127.0.0.1", port), make_handler(endpoints, timeout, capture))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--endpoint", action="append", default=[], metavar="NAME[/VARIANT]=URL", help="repeatable; variant AllTraffic"
    )
    parser.add_argument("--weight", action="append", default=[], metavar="NAME/VARIANT=W", help="default 1 each")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per invocation (SageMaker: 60)")
    parser.add_argument("--capture-dir", type=Path, help="write SageMaker data capture files here")
    parser.add_argument("--model-data", action="append", default=[], metavar="NAME=S3PREFIX", help="multi-model")
    parser.add_argument(
        "--models-dir", action="append", default=[], metavar="NAME=DIR", help="the container's /opt/ml/models"
    )
    parser.add_argument("--async-output", action="append", default=[], metavar="NAME=S3URI", help="S3OutputPath")
    parser.add_argument("--async-failure", action="append", default=[], metavar="NAME=S3URI", help="S3FailurePath")
    args = parser.parse_args(argv)
    variants: dict[str, dict[str, str]] = {}
    for mapping in args.endpoint:
        key, separator, url = mapping.partition("=")
        if not separator or not url.startswith("http"):
            parser.error(f"--endpoint needs NAME[/VARIANT]=http://host:port, got {mapping!r}")
        name, _, variant = key.partition("/")
        variants.setdefault(name, {})[variant or DEFAULT_VARIANT] = url.rstrip("/")
    weights: dict[str, dict[str, float]] = {}
    for mapping in args.weight:
        key, _, value = mapping.partition("=")
        name, _, variant = key.partition("/")
        if variant not in variants.get(name, {}):
            parser.error(f"--weight {mapping!r}: no such --endpoint {name}/{variant}")
        weights.setdefault(name, {})[variant] = float(value)
    options = {
        key: _named(parser, getattr(args, key)) for key in ("model_data", "models_dir", "async_output", "async_failure")
    }
    s3 = None
    if any(options.values()):
        import boto3

        s3 = boto3.client("s3")
    targets = {}
    for name, urls in variants.items():
        models = {}
        if name in options["model_data"]:
            if name not in options["models_dir"]:
                parser.error(f"--model-data {name}=... needs --models-dir {name}=DIR")
            directory = Path(options["models_dir"][name])
            models = {
                variant: ModelHost(url, options["model_data"][name], directory, s3) for variant, url in urls.items()
            }
        queue = None
        if name in options["async_output"]:
            queue = AsyncQueue(s3, options["async_output"][name], options["async_failure"].get(name))
        targets[name] = Endpoint(urls, weights.get(name), models, queue)
    server = serve(targets, args.port, args.timeout, args.capture_dir)
    print(json.dumps({"listening": f"http://127.0.0.1:{args.port}", "endpoints": variants}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def _named(parser: argparse.ArgumentParser, mappings: list[str]) -> dict[str, str]:
    named = {}
    for mapping in mappings:
        name, separator, value = mapping.partition("=")
        if not separator or not value:
            parser.error(f"expected NAME=VALUE, got {mapping!r}")
        named[name] = value
    return named


if __name__ == "__main__":
    sys.exit(main())
