#!/usr/bin/env python3
"""Run a Batch Transform job here, with SageMaker's semantics, against a running container (a local-testing tool).

    python -m sagemaker_local.transform --container http://127.0.0.1:8080 \\
        --input s3://bucket/nightly/in/ --output s3://bucket/nightly/out/
    python -m sagemaker_local.transform --container http://127.0.0.1:8080 --job-name NAME   # a created job's settings

What SageMaker does with SplitType=Line, and so does this: every object under the input prefix is one input file;
its lines are packed into mini-batches of whole lines whose size stays within MaxPayloadInMB (MultiRecord) or
sent one by one (SingleRecord), never mixing files; up to MaxConcurrentTransforms requests are in flight; the
answers are joined in input order (AssembleWith=Line: a newline after each answer, as SageMaker and the SDK's local
mode write it, whatever the answer ends with) into <output>/<file>.out.
MaxPayloadInMB and MaxConcurrentTransforms default to the container's GET /execution-parameters. A failed
request is retried InvocationsMaxRetries times, then fails its input file (no .out); a line larger than
MaxPayloadInMB fails its file before anything is sent. The answer must hold one line per input line.

S3 through boto3 (AWS_ENDPOINT_URL or --endpoint-url points it at moto); the container over HTTP on 127.0.0.1.
Prints a JSON report; exits 1 when any input file failed (the job's FailureReason names the file and line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sagemaker_local.s3uri import split_uri

MIB = 1024 * 1024
MAX_PAYLOAD_MB = 100  # SageMaker's limits: MaxPayloadInMB ≤ 100, and × MaxConcurrentTransforms ≤ 100 MB
STRATEGIES = ("MultiRecord", "SingleRecord")


@dataclass
class Job:
    input_uri: str
    output_uri: str
    max_payload_mb: int | None = None
    concurrency: int | None = None
    strategy: str = "MultiRecord"
    content_type: str = "application/jsonlines"
    accept: str | None = None
    timeout: float = 600.0
    retries: int = 3


@dataclass
class FileReport:
    key: str
    lines: int = 0
    mini_batches: int = 0
    output: str | None = None
    failure: str | None = None


@dataclass
class Report:
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[FileReport]:
        return [report for report in self.files if report.failure]

    def as_dict(self) -> dict:
        return {
            "status": "Failed" if self.failed else "Completed",
            "failure_reason": "; ".join(f"{report.key}: {report.failure}" for report in self.failed) or None,
            "files": [vars(report) for report in self.files],
            "lines": sum(report.lines for report in self.files),
            "mini_batches": sum(report.mini_batches for report in self.files),
            "seconds": round(self.seconds, 3),
        }


class TransformError(Exception):
    """An input file that cannot be transformed: the message names the line or the answer."""


def mini_batches(lines: list[bytes], limit: int, strategy: str) -> Iterator[list[bytes]]:
    """Whole lines packed in order: as many as fit `limit` bytes joined by newlines (one each for SingleRecord)."""
    batch: list[bytes] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        if len(line) > limit:
            raise TransformError(f"line {number} is {len(line)} bytes, over MaxPayloadInMB ({limit} bytes)")
        if batch and (strategy == "SingleRecord" or size + 1 + len(line) > limit):
            yield batch
            batch, size = [], 0
        size += len(line) + (1 if batch else 0)
        batch.append(line)
    if batch:
        yield batch


class Runner:
    def __init__(self, container: str, job: Job, s3: object):
        self.container = container.rstrip("/")
        self.job = job
        self.s3 = s3
        parameters = self._execution_parameters()
        self.max_payload_mb = job.max_payload_mb or int(parameters.get("MaxPayloadInMB", 6))
        self.concurrency = job.concurrency or int(parameters.get("MaxConcurrentTransforms", 1))
        if not 1 <= self.max_payload_mb <= MAX_PAYLOAD_MB or self.max_payload_mb * self.concurrency > MAX_PAYLOAD_MB:
            raise ValueError(
                f"MaxPayloadInMB {self.max_payload_mb} × MaxConcurrentTransforms {self.concurrency}: SageMaker allows "
                f"MaxPayloadInMB 1..{MAX_PAYLOAD_MB} and a product of at most {MAX_PAYLOAD_MB} MB"
            )

    def run(self) -> Report:
        started = time.monotonic()
        report = Report()
        bucket, prefix = split_uri(self.job.input_uri)
        keys = sorted(
            item["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/")
        )
        if not keys:
            raise ValueError(f"{self.job.input_uri}: no input objects")
        with ThreadPoolExecutor(self.concurrency) as pool:
            for key in keys:
                report.files.append(self._transform(pool, bucket, prefix, key))
        report.seconds = time.monotonic() - started
        return report

    def _transform(self, pool: ThreadPoolExecutor, bucket: str, prefix: str, key: str) -> FileReport:
        result = FileReport(key)
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        lines = [line for line in body.split(b"\n") if line.strip()]
        result.lines = len(lines)
        try:
            batches = list(mini_batches(lines, self.max_payload_mb * MIB, self.job.strategy))
            result.mini_batches = len(batches)
            answers = list(pool.map(self._invoke, batches))
            for batch, answer in zip(batches, answers):
                if (answered := answer.count(b"\n")) != len(batch):
                    raise TransformError(f"a mini-batch of {len(batch)} lines was answered with {answered} lines")
        except TransformError as error:
            result.failure = str(error)
            return result
        out_bucket, out_prefix = split_uri(self.job.output_uri)
        relative = key[len(prefix) :].lstrip("/") if prefix.endswith("/") or not prefix else key.rsplit("/", 1)[-1]
        out_key = f"{out_prefix.rstrip('/')}/{relative}.out".lstrip("/")
        self.s3.put_object(Bucket=out_bucket, Key=out_key, Body=b"".join(answers))
        result.output = f"s3://{out_bucket}/{out_key}"
        return result

    def _invoke(self, batch: list[bytes]) -> bytes:
        """One mini-batch's answer and the newline AssembleWith=Line puts after it; retried, then a TransformError."""
        headers = {"Content-Type": self.job.content_type, "Accept": self.job.accept or self.job.content_type}
        body = b"\n".join(batch)
        failure = ""
        for _ in range(self.job.retries + 1):
            request = urllib.request.Request(f"{self.container}/invocations", data=body, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.job.timeout) as response:
                    answer = response.read()
                return answer + b"\n"
            except urllib.error.HTTPError as error:
                failure = f"the container answered {error.code}: {error.read()[:300].decode(errors='replace')}"
            except OSError as error:
                failure = f"the container could not be reached: {error}"
        raise TransformError(f"a mini-batch of {len(batch)} lines failed {self.job.retries + 1} times: {failure}")

    def _execution_parameters(self) -> dict:
        try:
            with urllib.request.urlopen(f"{self.container}/execution-parameters", timeout=10) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return {}


def job_from_sagemaker(client: object, name: str) -> Job:
    """The settings of a created transform job (DescribeTransformJob)."""
    described = client.describe_transform_job(TransformJobName=name)
    source = described["TransformInput"]["DataSource"]["S3DataSource"]
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise ValueError(f"job {name}: only S3DataType S3Prefix is run here")
    if described["TransformInput"].get("SplitType", "None") != "Line":
        raise ValueError(f"job {name}: only SplitType Line is run here")
    client_config = described.get("ModelClientConfig", {})
    return Job(
        input_uri=source["S3Uri"],
        output_uri=described["TransformOutput"]["S3OutputPath"],
        max_payload_mb=described.get("MaxPayloadInMB"),
        concurrency=described.get("MaxConcurrentTransforms"),
        strategy=described.get("BatchStrategy", "MultiRecord"),
        content_type=described["TransformInput"].get("ContentType", "application/jsonlines"),
        accept=described["TransformOutput"].get("Accept"),
        timeout=float(client_config.get("InvocationsTimeoutInSeconds", 600)),
        retries=int(client_config.get("InvocationsMaxRetries", 3)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--container", required=True, help="the running container, e.g. http://127.0.0.1:8080")
    parser.add_argument("--job-name", help="take the settings of this created transform job (DescribeTransformJob)")
    parser.add_argument("--input", help="S3 prefix of the input files")
    parser.add_argument("--output", help="S3 prefix for the <file>.out answers")
    parser.add_argument("--max-payload-mb", type=int, help="default: the container's /execution-parameters")
    parser.add_argument("--concurrency", type=int, help="MaxConcurrentTransforms (default: the container's)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="MultiRecord")
    parser.add_argument("--content-type", default="application/jsonlines")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per invocation (default 600)")
    parser.add_argument("--retries", type=int, default=3, help="InvocationsMaxRetries (default 3)")
    parser.add_argument("--endpoint-url", help="AWS API endpoint (e.g. moto); default AWS_ENDPOINT_URL")
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    import boto3

    session = boto3.session.Session(region_name=args.region)
    s3 = session.client("s3", endpoint_url=args.endpoint_url)
    try:
        if args.job_name:
            job = job_from_sagemaker(session.client("sagemaker", endpoint_url=args.endpoint_url), args.job_name)
        elif args.input and args.output:
            job = Job(
                args.input, args.output, args.max_payload_mb, args.concurrency, args.strategy, args.content_type,
                None, args.timeout, args.retries,
            )  # fmt: skip
        else:
            parser.error("give --job-name, or --input and --output")
        report = Runner(args.container, job, s3).run()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = report.as_dict()
    print(json.dumps(summary, indent=2))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
