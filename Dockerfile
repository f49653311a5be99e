# The Anxin processes (bridge, detector workers, alerts, storage, console) share this image.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY anxin anxin
COPY ingest ingest
COPY detectors detectors
COPY alerts alerts
COPY storage storage
COPY simulators simulators
COPY console console
RUN pip install --no-cache-dir . && useradd --system --home /app anxin && mkdir -p /data && chown anxin /data
USER anxin
ENV ANXIN_RUN_DIR=/data ANXIN_FAUST__DATA_DIR=/data/faust ANXIN_REGISTRY=/config/registry.yaml
ENTRYPOINT ["anxin"]
