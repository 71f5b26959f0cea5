#!/bin/sh
# Build the hrd-bot image where no image registry can be reached: a Debian 12 base made
# with debootstrap from Debian's packages, imported into podman, then deploy/Containerfile
# on top of it. Run as root from the checkout's root: sh deploy/build-image.sh [TAG]
# Needs debootstrap and podman (apt-get install debootstrap podman). Set CA_FILE to a CA
# bundle when the network inspects TLS (pip inside the build needs it).
set -eu
TAG=${1:-localhost/hrd-bot:latest}
BASE=localhost/debian:bookworm-debootstrap
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if ! podman image exists "$BASE"; then
    debootstrap --variant=minbase bookworm "$WORK/root"
    # Security updates from the same mirror debootstrap used.
    sed -n 's#^deb \(.*\)/debian bookworm main$#deb \1/debian-security bookworm-security main#p' \
        "$WORK/root/etc/apt/sources.list" > "$WORK/root/etc/apt/sources.list.d/security.list"
    tar -C "$WORK/root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE"
fi

set -- --isolation chroot -f deploy/Containerfile --ignorefile deploy/Containerfile.dockerignore \
    --build-arg "BASE=$BASE" -t "$TAG"
if [ -n "${CA_FILE:-}" ]; then
    set -- "$@" --secret "id=ca-certificates,src=$CA_FILE"
fi
podman build "$@" .
