# imagegate's own image, for machines with a Docker engine (or buildah/kaniko). Without one,
# scripts/build-image.sh builds the same image into an OCI layout; both assemble the final root
# filesystem with scripts/image-rootfs.sh, which tests/image/own_image_test.py checks.
#   docker build -t registry.example.com/imagegate/imagegate:0.1.0 .

# Build stage: Debian 12 with the build packages of scripts/install-deps.sh (no test tools).
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config binutils ca-certificates \
      libboost-dev libboost-program-options-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev \
      libarchive-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAGEGATE_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target imagegate \
 && scripts/image-rootfs.sh /build/imagegate /rootfs

# Final stage: nothing but that root filesystem (binary, its libraries, CA certificates, passwd).
# No shell, no package manager. Numeric user, so the kubelet can check runAsNonRoot.
FROM scratch
COPY --from=build /rootfs /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/imagegate"]
