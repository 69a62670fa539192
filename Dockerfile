# Video recommender: a SageMaker bring-your-own container that serves (default, or `serve`) and trains (`train`).
#
#   DOCKER_BUILDKIT=1 docker build --platform linux/amd64 -t video-recommender .
#   docker run -p 8080:8080 video-recommender
#
# BASE_IMAGE must be a Debian-based Python 3.11 image; the tests build a local stand-in when Docker Hub is out of reach.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS runtime
# implicit's wheel links OpenMP (libgomp1), which slim images lack. Debian's security updates decide the version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies in their own layer, before any code: editing code does not reinstall them. Test suites and the
# pyarrow parts nothing here loads (Flight RPC, S3 filesystem; ~50 MB) are left out. Parquet stays. The bytecode pip
# compiles stays too: with PYTHONDONTWRITEBYTECODE nothing is cached at run time, and every start compiled serving's
# imports again.
FROM runtime AS dependencies
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && find /opt/venv -depth -type d -name tests -exec rm -rf {} + \
    && pyarrow=/opt/venv/lib/python3.11/site-packages/pyarrow \
    && rm -rf "$pyarrow/include" "$pyarrow"/libarrow_flight.so* "$pyarrow"/_flight*.so \
              "$pyarrow"/libarrow_s3.so* "$pyarrow"/_s3fs*.so

# The default model, trained on the bundled sample so the image serves on its own.
FROM dependencies AS default-model
WORKDIR /build
COPY features/ features/
COPY vrmodels/ vrmodels/
COPY data/sample/ data/sample/
RUN python -m features.build_features data/sample/events.csv.gz --videos data/sample/videos.csv.gz --out /tmp/features \
    && python -m vrmodels.train_model --features /tmp/features --models-root /tmp/models \
    && cp -rL /tmp/models/latest /opt/default-model

FROM runtime
# Serving workers parse untrusted bodies: they run as this unprivileged user (the gunicorn master stays root, as
# SageMaker starts containers). Everything under /opt/program stays root-owned, so the model is read-only to them;
# `train` runs as root and writes /opt/ml/model as a SageMaker training job must.
RUN useradd --system --no-create-home --shell /usr/sbin/nologin --uid 10001 vr
# multi-models: SageMaker may host this image on a multi-model endpoint (it then sets SAGEMAKER_MULTI_MODEL=true).
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      com.amazonaws.sagemaker.capabilities.multi-models=true \
      org.opencontainers.image.title="video-recommender" \
      org.opencontainers.image.description="ALS video recommendations behind SageMaker's /ping and /invocations"
COPY --from=dependencies /opt/venv /opt/venv
COPY --from=default-model /opt/default-model /opt/program/model
WORKDIR /opt/program
COPY serve.py ./
COPY serving/ serving/
COPY vrmodels/ vrmodels/
COPY features/ features/
RUN python -m compileall -q /opt/program
# A model SageMaker extracts into /opt/ml/model takes precedence over this one.
ENV VR_MODEL_DIR=/opt/program/model \
    VR_WORKER_USER=vr
EXPOSE 8080
# Exec form: the server itself receives SIGTERM. SageMaker appends `serve` or `train`; plain `docker run` serves.
ENTRYPOINT ["/opt/venv/bin/python", "/opt/program/serve.py"]
CMD ["serve"]
