# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
# webauthn-rs verifies passkeys with OpenSSL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin countersign

# Runtime stage: a small image with CA certificates and a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/countersign countersign \
    && mkdir -p /var/lib/countersign && chown countersign /var/lib/countersign
COPY --from=build /src/target/release/countersign /usr/local/bin/countersign
USER countersign
WORKDIR /var/lib/countersign
ENV DATABASE_URL=sqlite:///var/lib/countersign/countersign.db \
    BIND_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["countersign"]
CMD ["serve"]
