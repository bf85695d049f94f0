#!/usr/bin/env bash
# Builds imagegate's own container image without a Docker daemon, into an OCI layout:
#   scripts/build-image.sh [OUT_DIR]     (default build/image; tag = the project version)
# IMAGEGATE_BINARY names the binary to package (default: build/imagegate, built if missing).
#
# The image holds exactly what the server needs and nothing an attacker could use (the root
# filesystem of scripts/image-rootfs.sh: the binary, the libraries ldd lists, CA certificates,
# passwd with user 65532), with USER 65532:65532. No shell, no package manager, no other binary.
# The Dockerfile builds the same image where a Docker engine exists.
# Then: skopeo copy oci:OUT_DIR:VERSION docker://REGISTRY/imagegate/imagegate:VERSION (see the
# chart README). The layer is reproducible for a given binary: fixed timestamps and owners.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-build/image}
version=$(sed -n 's/^project(imagegate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
binary=${IMAGEGATE_BINARY:-build/imagegate}
epoch=2024-01-01T00:00:00Z
for tool in umoci tar; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done
if [[ -z ${IMAGEGATE_BINARY:-} && ! -x $binary ]]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target imagegate
fi
[[ -x $binary ]] || { echo "build-image: $binary is not an executable" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf -- "$stage"' EXIT
root=$stage/rootfs
# The same root filesystem as the Dockerfile's final stage: one script assembles both.
scripts/image-rootfs.sh "$binary" "$root"

# GNU tar, not `umoci insert` (umoci 0.4.7 writes truncated tars; see
# tests/fixtures/registry/build-images.sh): fixed times, owner root, no write bits for others.
find "$root" -exec touch -h -d "$epoch" {} +
(cd "$root" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort) >"$stage/list"
tar --create --file "$stage/layer.tar" --directory "$root" --format=posix --sort=name \
  --numeric-owner --owner=0 --group=0 --mode='u+rwX,go+rX,go-w' \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --files-from "$stage/list"

arch=$(dpkg --print-architecture)
rm -rf -- "$out"
mkdir -p "$(dirname "$out")"
umoci init --layout "$out"
umoci new --image "$out:$version"
umoci raw add-layer --image "$out:$version" --history.created "$epoch" \
  --history.created_by "scripts/build-image.sh: imagegate, its shared libraries, CA certificates, passwd" \
  "$stage/layer.tar"
umoci config --image "$out:$version" --created "$epoch" --history.created "$epoch" \
  --history.created_by "scripts/build-image.sh: config" --os linux --architecture "$arch" \
  --config.user 65532:65532 --config.entrypoint /usr/local/bin/imagegate --config.workingdir / \
  --config.label "org.opencontainers.image.title=imagegate" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.description=Kubernetes validating admission webhook for production-grade images"
umoci gc --layout "$out"
echo "build-image: oci:$out:$version ($(du -sh "$out" | cut -f1))" >&2
