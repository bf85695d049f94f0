#!/usr/bin/env bash
# Assembles the root filesystem of imagegate's own image into ROOTFS (which must not exist):
#   scripts/image-rootfs.sh BINARY ROOTFS
# Used by scripts/build-image.sh (OCI layout, no daemon) and by the Dockerfile's build stage, so
# both images hold the same files:
#   - /usr/local/bin/imagegate (debug info stripped), the entrypoint;
#   - the shared libraries `ldd` lists for it, and the dynamic loader, at the paths ldd names
#     (so the binary finds them exactly where it was linked to look);
#   - CA certificates (/etc/ssl/certs/ca-certificates.crt, and OpenSSL's default cert.pem path
#     pointing at it) for registries with public certificates;
#   - /etc/passwd and /etc/group with root and the numeric non-root user 65532 ("nonroot", as in
#     distroless images; its shell /sbin/nologin does not exist, so it cannot log in), and an
#     nsswitch.conf so host names resolve through /etc/hosts, then DNS.
# Nothing else: no shell, no package manager, no other binary.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: image-rootfs.sh BINARY ROOTFS" >&2; exit 2; }
binary=$1
root=$2
for tool in ldd objcopy; do
  command -v "$tool" >/dev/null || { echo "image-rootfs: $tool missing" >&2; exit 1; }
done
[[ ! -e $root ]] || { echo "image-rootfs: $root already exists" >&2; exit 1; }
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/usr/lib/ssl"

objcopy --strip-debug "$binary" "$root/usr/local/bin/imagegate"

# Every library the dynamic loader resolves for this binary on this (the build) system, copied
# (symlinks followed) to the path it was found at, and the loader itself (the line without "=>").
# "not found" would make an image that cannot start: refuse.
if ldd "$binary" | grep -q "not found"; then
  echo "image-rootfs: unresolved libraries:" >&2; ldd "$binary" >&2; exit 1
fi
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
  while read -r library; do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
  done

cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
# OpenSSL's default bundle path (OPENSSLDIR/cert.pem), as Debian links it.
ln -s /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
