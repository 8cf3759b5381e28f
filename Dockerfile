# Build
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/cholang

# Run
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data cholang && mkdir -p /data && chown cholang /data
COPY --from=build /src/target/release/cholang /usr/local/bin/cholang
USER cholang
ENV CHOLANG_DATA_DIR=/data CHOLANG_ADDR=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
CMD ["cholang", "serve"]
