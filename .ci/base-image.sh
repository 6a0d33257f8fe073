#!/usr/bin/env bash
# Build a stand-in for the Dockerfile's base image when no registry is reachable.
#
# The Dockerfile starts FROM python:3.11-slim-bookworm. CI machines here cannot pull it, so this
# script makes an image with the same name and the same contract (Debian bookworm, python3.11 on
# PATH as python3, the venv module, CA certificates) from Debian packages with debootstrap, and
# `docker import`s it. It copies this machine's CA bundle in, so pip inside `docker build` trusts
# the same TLS roots the host does. Run it only when the image is missing: it takes a few minutes.
set -euo pipefail

image="${1:-python:3.11-slim-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
workdir="$(mktemp -d /var/tmp/routeiq-rootfs.XXXXXX)"
trap 'rm -rf "$workdir"' EXIT

rootfs="$workdir/rootfs"
echo "base-image: debootstrap bookworm into $rootfs (mirror $mirror)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
  tail -n 30 "$workdir/debootstrap.log" >&2
  exit 1
}

# Trust what the host trusts (a TLS-intercepting proxy's root, for instance).
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
# Keep it slim: no package lists, docs, man pages or apt caches in the image.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/*
# The official image has `python`; make the stand-in answer to it too.
ln -sf python3 "$rootfs/usr/bin/python"

tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  - "$image" >/dev/null
docker image inspect --format 'base-image: {{.RepoTags}} {{.Size}} bytes' "$image"
