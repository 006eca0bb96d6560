#!/usr/bin/env bash
# Builds the backstage-mcp container image without any registry: a static
# binary built here and deploy/image/rootfs.sh's root filesystem, FROM
# scratch (deploy/image/Containerfile, the same file the release pipeline
# uses), with buildah (Debian package). The result is reproducible: file
# times and the image's created time come from SOURCE_DATE_EPOCH (default:
# the last commit's time).
#
# The image goes into the default containers storage, which podman reads
# too: a plain `podman run IMAGE` finds it, and the script prints that line.
#
# Usage: deploy/image/build.sh [IMAGE]   (default IMAGE: localhost/backstage-mcp:dev)
# Env:   BUILDAH_FLAGS (storage flags, e.g. "--storage-driver vfs"; default
#        none: the storage podman uses), VERSION, GO.
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${1:-localhost/backstage-mcp:dev}
go=${GO:-go}
storage=${BUILDAH_FLAGS:-}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH=$epoch
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
# The version as the binary states it (cmd/backstage-mcp/version.go): the
# release tag on a clean checkout of one, else the commit's Go
# pseudo-version v0.0.0-<commit time UTC>-<12 hex>; +dirty for
# uncommitted changes.
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null ||
		{ ct=$(git log -1 --format=%ct 2>/dev/null) && echo "v0.0.0-$(date -u -d "@$ct" +%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)"; } ||
		true)
	if [ -n "$VERSION" ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then VERSION+=+dirty; fi
fi
version=$VERSION

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 GOOS=linux "$go" build -trimpath -buildvcs=false \
	-ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit -X main.date=$date" \
	-o "$ctx/backstage-mcp" ./cmd/backstage-mcp
deploy/image/rootfs.sh "$ctx/rootfs.tar"
touch -h -d "@$epoch" "$ctx/backstage-mcp" "$ctx/rootfs.tar"

# shellcheck disable=SC2086
buildah $storage bud --quiet --timestamp "$epoch" --layers=false \
	--build-arg "VERSION=$version" --build-arg "REVISION=$commit" --build-arg "CREATED=$date" \
	-f deploy/image/Containerfile -t "$image" "$ctx" >/dev/null
echo "$image"
# podman keeps its own record of the storage driver: storage first used
# with another driver (older builds used --storage-driver vfs) hides the
# image from a plain podman run. Say how to fix it rather than print a
# line that will not work.
if command -v podman >/dev/null && [ -z "$storage" ] && ! err=$(podman image exists "$image" 2>&1); then
	echo "build.sh: built $image, but podman cannot see it: ${err:-not in its storage}" >&2
	echo "build.sh: if podman reports a storage driver mismatch, older images were built with --storage-driver vfs: remove them with \`podman --storage-driver vfs system reset\` (or set BUILDAH_FLAGS and PODMAN_FLAGS to that driver)" >&2
	exit 1
fi
echo "Run it with the embedded demo catalog (Streamable HTTP at http://127.0.0.1:8080/mcp):"
echo "  podman run --rm -p 8080:8080 $image serve --demo --http 0.0.0.0:8080"
