"""The SageMaker-compatible HTTP server: /ping, /invocations, /execution-parameters."""
