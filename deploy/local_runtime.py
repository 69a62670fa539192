#!/usr/bin/env python3
"""A local stand-in for the SageMaker runtime API, forwarding to real containers (a local-testing tool).

    python deploy/local_runtime.py --port 9000 --endpoint video-recommender=http://127.0.0.1:8080
    aws sagemaker-runtime invoke-endpoint --endpoint-url http://127.0.0.1:9000 \\
        --endpoint-name video-recommender --content-type application/json --body fileb://req.json out.json

`POST /endpoints/{name}/invocations` goes to `<container>/invocations` with Content-Type, Accept and
X-Amzn-SageMaker-Custom-Attributes passed through. As on SageMaker, a container 4xx/5xx becomes HTTP 424 with
`x-amzn-ErrorType: ModelError` and OriginalStatusCode/OriginalMessage (boto3 raises `ModelError`), and an
unknown endpoint a `ValidationError`. Requests are not authenticated. Standard library only; binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROUTE = re.compile(r"^/endpoints/([^/]+)/invocations$")
PASSED_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Inference-Id")
ACCOUNT = "123456789012"
MAX_PAYLOAD = 6 * 1024 * 1024


def make_handler(targets: dict[str, str], timeout: float) -> type[BaseHTTPRequestHandler]:
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
            forwarded = urllib.request.Request(f"{targets[name]}/invocations", data=body, method="POST")
            for header in PASSED_HEADERS:
                if self.headers.get(header):
                    forwarded.add_header(header, self.headers[header])
            try:
                with urllib.request.urlopen(forwarded, timeout=timeout) as answer:
                    return self._reply(200, answer.read(), answer.headers, request_id)
            except urllib.error.HTTPError as failure:
                return self._model_error(name, failure.code, failure.read().decode("utf-8", "replace"), request_id)
            except (urllib.error.URLError, TimeoutError) as failure:
                return self._error(500, "InternalFailure", f"container of {name} did not answer: {failure}", request_id)

        def _reply(self, status: int, body: bytes, headers, request_id: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", headers.get("Content-Type", "application/octet-stream"))
            self.send_header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
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


def serve(targets: dict[str, str], port: int, timeout: float = 60.0) -> ThreadingHTTPServer:
    return ThreadingHTTPServer(("127.0.0.1", port), make_handler(targets, timeout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--endpoint", action="append", default=[], metavar="NAME=URL", help="repeatable")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per invocation (SageMaker: 60)")
    args = parser.parse_args(argv)
    targets = {}
    for mapping in args.endpoint:
        name, separator, url = mapping.partition("=")
        if not separator or not url.startswith("http"):
            parser.error(f"--endpoint needs NAME=http://host:port, got {mapping!r}")
        targets[name] = url.rstrip("/")
    server = serve(targets, args.port, args.timeout)
    print(json.dumps({"listening": f"http://127.0.0.1:{args.port}", "endpoints": targets}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
