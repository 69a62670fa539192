"""s3://bucket/key URIs, for the local stand-ins of SageMaker's jobs."""

from __future__ import annotations


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; ValueError naming the URI otherwise."""
    if not uri.startswith("s3://") or not uri[len("s3://") :].split("/", 1)[0]:
        raise ValueError(f"{uri}: not an s3://bucket/key URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key
