# streamgate: build with the GStreamer development packages, run on the runtime ones only.
#   docker build -t streamgate .
#   docker run --rm -p 8080:8080 -p 1935:1935 -p 31000-31999:31000-31999/udp \
#       streamgate serve --announce-address <public IP>
# With host networking (`--network host`) no port mapping or announce address is needed.

FROM rust:1-bookworm AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
        libgstreamer-plugins-bad1.0-dev libnice-dev libgstrtspserver-1.0-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them (the vendored crates are dependencies).
COPY Cargo.toml Cargo.lock ./
COPY vendor ./vendor
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked || true
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin streamgate

FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
        gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice libnice10 ca-certificates \
        gstreamer1.0-x fonts-dejavu-core libgstrtspserver-1.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/streamgate --create-home streamgate
COPY --from=build /src/target/release/streamgate /usr/local/bin/streamgate
USER streamgate
WORKDIR /var/lib/streamgate
# RTSP players over UDP get media ports chosen at SETUP: with bridged networking they need
# TCP-interleaved RTSP (-rtsp_transport tcp), or run the container with host networking.
EXPOSE 8080/tcp 1935/tcp 8554/tcp 8082/tcp 31000-31999/udp
# Recordings and snapshots live here: keep them on a volume.
VOLUME /var/lib/streamgate/data
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["streamgate"]
CMD ["serve", "--data-dir", "/var/lib/streamgate/data"]
