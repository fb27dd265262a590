# syntax=docker/dockerfile:1
# Build: docker build -t overspill:0.1.0 .
# Stage 1 builds the wheel; stage 2 installs only the wheel into a slim runtime as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md LICENSE ./
COPY operator ./operator
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim
LABEL org.opencontainers.image.title="overspill" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/overspill/overspill"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm -f /tmp/*.whl \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin overspill
USER 10001:10001
# 9090: the operator's /metrics; 8080: liveness (/healthz). The root filesystem can be read-only: the operator
# writes nothing to disk (mount an emptyDir at /tmp, as manifests/base/deployment.yaml does).
EXPOSE 9090 8080
ENTRYPOINT ["overspill"]
CMD ["run", "--all-namespaces", "--metrics-port", "9090", "--liveness", "http://0.0.0.0:8080/healthz"]
