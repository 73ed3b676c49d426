# syntax=docker/dockerfile:1
#
# Experiment Broker image: both binaries, `worker` and `producer`.
# The ECS task definitions in infra/experiment-broker.yaml pass the command
# (`worker serve ...` / `producer serve`); no ENTRYPOINT is set.
# Not built in CI (no Docker there); see infra/README.md.

# The toolchain worker/link-order.txt was written for (its symbol names carry the toolchain's
# hash): another one builds the same binary with ~3.5 MiB more memory at start and says so in a
# build warning. Move the two together (scripts/link-order.sh).
FROM rust:1.95.0-bookworm AS build
# aws-lc-sys (TLS for the AWS SDK) can fall back to a CMake build.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The image runs on Debian 12 (glibc 2.36), whose loader reads packed relative relocations:
# a 12 KB table instead of 1.2 MB at every start, 1.2 MB off the binary, 0.4 MiB off its peak
# memory (bench/README.md). Joined to .cargo/config.toml's flags. Not the default elsewhere: a
# binary linked so needs glibc >= 2.36 where it runs.
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-Wl,-z,pack-relative-relocs" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-Wl,-z,pack-relative-relocs"
# Cache mounts keep the registry and target/ between builds (BuildKit);
# the binaries are copied out because the target/ mount is not in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release -p worker -p producer --locked \
 && install -D -m 0755 target/release/worker /out/worker \
 && install -D -m 0755 target/release/producer /out/producer

FROM debian:bookworm-slim
# ca-certificates: TLS to the AWS APIs and to experiments' HTTPS probes.
# python3: the worker runs `python` providers that are not native activities.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 broker \
 && useradd --system --uid 10001 --gid broker --home-dir /var/lib/broker --create-home --shell /usr/sbin/nologin broker
COPY --from=build /out/worker /out/producer /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/broker
CMD ["worker", "serve"]
