#!/usr/bin/env bash
# Builds the backstage-mcp container image without any registry: a static
# binary built here, CA certificates from this machine, FROM scratch, with
# buildah (Debian package) on the vfs storage driver. The result is
# reproducible: file times and the image's created time come from
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
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
certs=/etc/ssl/certs/ca-certificates.crt
[ -r "$certs" ] || { echo "build.sh: $certs missing (apt-get install ca-certificates)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# rootfs/ is owned by root and read-only to the runtime user; owned/ holds
# the two directories the runtime user writes (/tmp, the audit directory).
mkdir -p "$root/rootfs/etc/ssl/certs" "$root/rootfs/etc/backstage-mcp" "$root/owned/tmp" "$root/owned/var/log/backstage-mcp"
CGO_ENABLED=0 GOOS=linux "$go" build -trimpath -buildvcs=false \
	-ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit -X main.date=$date" \
	-o "$root/rootfs/backstage-mcp" ./cmd/backstage-mcp
cp "$certs" "$root/rootfs/etc/ssl/certs/ca-certificates.crt"
cp LICENSE "$root/rootfs/LICENSE"
# A passwd/group entry so the numeric user has a name in tools that ask.
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$root/rootfs/etc/passwd"
printf 'nonroot:x:65532:\n' >"$root/rootfs/etc/group"
chmod 0755 "$root/rootfs/backstage-mcp" "$root/rootfs/etc/backstage-mcp" "$root/owned/var/log/backstage-mcp"
chmod 0644 "$root/rootfs/etc/ssl/certs/ca-certificates.crt" "$root/rootfs/etc/passwd" "$root/rootfs/etc/group" "$root/rootfs/LICENSE"
chmod 1777 "$root/owned/tmp"
find "$root" -exec touch -h -d "@$epoch" {} +

# shellcheck disable=SC2086
buildah $storage bud --quiet --timestamp "$epoch" --layers=false \
	--build-arg "VERSION=$version" --build-arg "REVISION=$commit" --build-arg "CREATED=$date" \
	-f deploy/image/Containerfile.local -t "$image" "$root" >/dev/null
echo "$image"
