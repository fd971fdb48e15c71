# syntax=docker/dockerfile:1
#
# node-lifecycle-controller: a statically linked (musl) release binary on distroless/static.
#   docker build -t node-lifecycle-controller:0.1.0 .
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 .

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGETARCH
# musl-gcc builds ring's C and assembly parts and the mimalloc allocator for the musl target.
# The version follows the pinned Debian release (bookworm) of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN case "${TARGETARCH:-amd64}" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported architecture: ${TARGETARCH}" >&2; exit 1 ;; \
    esac > /rust-target \
 && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Declared in Cargo.toml ([[bench]]), so cargo wants it present even though it is not built.
COPY benches ./benches
# The musl target links statically by default; crt-static makes it explicit.
ENV RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TERM_COLOR=never
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(cat /rust-target)" \
 && cargo build --release --locked --target "${target}" \
 && install -D -m 0755 "target/${target}/release/node-lifecycle-controller" /out/node-lifecycle-controller

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="node-lifecycle-controller" \
      org.opencontainers.image.description="Node lifecycle and taint-eviction controllers, outside kube-controller-manager" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=builder /out/node-lifecycle-controller /usr/local/bin/node-lifecycle-controller
# 65532 is distroless's "nonroot" user; the chart sets the same ids.
USER 65532:65532
# The secure admin port (--secure-address, HTTPS): /metrics behind a reviewed bearer token;
# /healthz, /readyz, /livez open. The plain one (--admin-address) is off unless set.
EXPOSE 10257
# The binary is the entrypoint and `run` the default command, so that the chart's args (which
# begin with `run`) replace CMD only, and `docker run IMAGE simulate` works too.
ENTRYPOINT ["/usr/local/bin/node-lifecycle-controller"]
CMD ["run"]
