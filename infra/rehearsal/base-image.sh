#!/usr/bin/env bash
# Makes the rehearsal's Python base image from Debian's packages, since no registry serves
# container images here:  base-image.sh TAG
#   debootstrap --variant=minbase bookworm, plus python3.11, python3.11-venv, python-is-python3
#   and this machine's CA bundle (so pip inside image builds trusts what this machine trusts),
#   imported with `podman import`. It stands in for python:3.11-slim-bookworm: `python` on PATH,
#   `python -m venv` works.
# The root file system is cached as a tar under $TWEETPIPE_CACHE (default ~/.cache/tweetpipe),
# keyed by this script's hash: a second run on one machine only imports it (or finds the image).
set -euo pipefail
tag=${1:?usage: base-image.sh TAG}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if podman image exists "$tag"; then exit 0; fi

key=$(cat "$0" "$bundle" | sha256sum | cut -c1-16)
cache=${TWEETPIPE_CACHE:-$HOME/.cache/tweetpipe}/rehearsal
tarball=$cache/base-rootfs-$key.tar
if [ ! -f "$tarball" ]; then
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root" "$tarball.part"' EXIT
  echo "base image: debootstrap bookworm into $root" >&2
  debootstrap --variant=minbase bookworm "$root" "$mirror" >&2
  # apt resolves the Python packages' dependencies (debootstrap's --include does not).
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    python3.11 python3.11-venv python-is-python3 ca-certificates >&2
  mkdir -p "$root/etc/ssl/certs"
  cp "$bundle" "$root/etc/ssl/certs/ca-certificates.crt"
  chroot "$root" apt-get clean
  : > "$root/etc/resolv.conf"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" --numeric-owner -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  "$tarball" "$tag" >&2
