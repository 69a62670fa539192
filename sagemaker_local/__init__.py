"""Local stand-ins for SageMaker's side of the container, for tests, benches and trying things out without AWS:
the runtime API (real-time, A/B variants, data capture), the multi-model host, asynchronous inference and batch
transform. They drive a real running container over HTTP on 127.0.0.1; AWS's own local mode (the `sagemaker`
SDK's) is the reference for what they emulate. Never part of the image.
"""
