"""The deploy/ scripts and the Python client, end to end against moto in server mode with the real aws CLI and
boto3; runtime calls through sagemaker_local.runtime to real containers."""
