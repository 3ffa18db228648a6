# syntax=docker/dockerfile:1
#
# prom-metrics-app as one static binary in an empty (`scratch`) image: no shell, no libc, nothing
# writable, a numeric non-root user. Three stages:
#   build     compiles the static musl binary from source;
#   prebuilt  takes an already-built static binary from the build context (`--target prebuilt`,
#             with --build-arg BINARY=path), as release tools do; it needs no base image at all;
#   (default) the same image as `prebuilt`, with the binary from the build stage.
# Both final stages are `runtime` plus the binary, so they cannot drift apart.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# musl-gcc compiles the C parts of the TLS library for the static musl target.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY templates ./templates
COPY static ./static
# The context has no .git: the revision for prom_metrics_app_build_info comes in as an argument.
ARG REVISION=unknown
ENV PROM_METRICS_APP_REVISION=${REVISION}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/prom-metrics-app /prom-metrics-app

FROM scratch AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="prom-metrics-app" \
      org.opencontainers.image.description="A web service with known behaviour, instrumented with Prometheus and OpenTelemetry, for testing monitoring pipelines" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT"
# The root filesystem may be read-only: logs go to stdout, nothing is written to disk.
ENV LOG_TO_STDOUT=true \
    LISTEN_ADDR=0.0.0.0:5000
EXPOSE 5000
# 65532 is the "nonroot" user of distroless images; numeric, so Kubernetes' runAsNonRoot can check it.
USER 65532:65532
# No shell or curl in the image: the binary probes its own /healthz on LISTEN_ADDR.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/prom-metrics-app", "healthcheck"]
ENTRYPOINT ["/prom-metrics-app"]

FROM runtime AS prebuilt
ARG BINARY=target/x86_64-unknown-linux-musl/release/prom-metrics-app
COPY --chown=0:0 --chmod=0555 ${BINARY} /prom-metrics-app

FROM runtime
COPY --from=build --chown=0:0 --chmod=0555 /prom-metrics-app /prom-metrics-app
