"""SageMaker's asynchronous inference, for sagemaker_local.runtime (a local-testing tool).

InvokeEndpointAsync names an input already in S3 and answers 202 at once with where the answer will be: the
request is queued, sent to the container's /invocations (waiting up to the request's InvocationTimeoutSeconds,
default 900), and the container's answer is written to `<S3OutputPath>/<inference id>.out`; a failure (the
container's 4xx/5xx, or no answer in time) to `<S3FailurePath>/<inference id>-error.out` (the output path when no
failure path is configured). MaxConcurrentInvocationsPerInstance bounds the invocations in flight.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from sagemaker_local.s3uri import split_uri

DEFAULT_TIMEOUT = 900.0  # SageMaker's default InvocationTimeoutSeconds for asynchronous inference
MAX_TIMEOUT = 3600.0


class AsyncQueue:
    def __init__(self, s3: object, output: str, failure: str | None = None, max_concurrent: int = 4):
        for uri in (output, failure or output):
            split_uri(uri)  # refused at start, not on the first request
        self.s3 = s3
        self.output, self.failure = output.rstrip("/"), (failure or output).rstrip("/")
        self._pool = ThreadPoolExecutor(max_concurrent, thread_name_prefix="async-inference")

    def submit(
        self, container: str, input_location: str, headers: dict[str, str], inference_id: str, timeout: float
    ) -> tuple[str, str]:
        """Queue one invocation; its output and failure locations (one of them will be written)."""
        bucket, key = split_uri(input_location)
        self.s3.head_object(Bucket=bucket, Key=key)  # raises when the input is not there: refused up front
        output, failure = f"{self.output}/{inference_id}.out", f"{self.failure}/{inference_id}-error.out"
        self._pool.submit(self._run, container, (bucket, key), headers, timeout, output, failure)
        return output, failure

    def _run(
        self,
        container: str,
        source: tuple[str, str],
        headers: dict[str, str],
        timeout: float,
        output: str,
        failure: str,
    ) -> None:
        body = self.s3.get_object(Bucket=source[0], Key=source[1])["Body"].read()
        request = urllib.request.Request(f"{container}/invocations", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                self._put(output, answer.read(), answer.headers.get("Content-Type", "application/octet-stream"))
                return
        except urllib.error.HTTPError as error:
            message = {"statusCode": error.code, "message": error.read().decode("utf-8", "replace")}
        except OSError as error:
            message = {"statusCode": 500, "message": f"no answer within {timeout:g} s: {error}"}
        self._put(failure, json.dumps(message).encode(), "application/json")

    def _put(self, uri: str, body: bytes, content_type: str) -> None:
        bucket, key = split_uri(uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
