#!/usr/bin/env bash
# Builds the backstage-mcp container image without any registry: a static
# binary built here and deploy/image/rootfs.sh's root filesystem, FROM
# scratch (deploy/image/Containerfile, the same file the release pipeline
# uses), with buildah (Debian package) on the vfs storage driver. The result
# is reproducible: file times and the image's created time come from
# SOURCE_DATE_EPOCH (default: the last commit's time).
#
# Usage: deploy/image/build.sh [IMAGE]   (default IMAGE: localhost/backstage-mcp:dev)
# Env:   BUILDAH_FLAGS (default "--storage-driver vfs"), VERSION, GO.
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${1:-localhost/backstage-mcp:dev}
go=${GO:-go}
storage=${BUILDAH_FLAGS:---storage-driver vfs}
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
