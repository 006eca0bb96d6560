#!/usr/bin/env bash
# Writes the image's root filesystem, everything but the binary, as one tar
# archive: CA certificates from this machine, a passwd/group entry for the
# non-root user 65532, the LICENSE, an empty config directory, and the two
# directories the runtime user writes (/tmp, the audit directory). Owners,
# modes and times are set in the archive itself, so the result does not
# depend on this machine's umask or on who runs the script, and the
# Containerfile's `ADD rootfs.tar /` reproduces them exactly.
#
# Used by deploy/image/build.sh and by goreleaser's before hook.
# Usage: deploy/image/rootfs.sh OUT.tar   (times: SOURCE_DATE_EPOCH, default the last commit's)
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:?usage: rootfs.sh OUT.tar}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
certs=/etc/ssl/certs/ca-certificates.crt
[ -r "$certs" ] || { echo "rootfs.sh: $certs missing (apt-get install ca-certificates)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/etc/ssl/certs" "$tmp/root/etc/backstage-mcp" "$tmp/root/var/log" "$tmp/owned/tmp" "$tmp/owned/var/log/backstage-mcp"
cp "$certs" "$tmp/root/etc/ssl/certs/ca-certificates.crt"
cp LICENSE "$tmp/root/LICENSE"
# A passwd/group entry so the numeric user has a name in tools that ask.
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$tmp/root/etc/passwd"
printf 'nonroot:x:65532:\n' >"$tmp/root/etc/group"
find "$tmp/root" "$tmp/owned" -type d -exec chmod 0755 {} +
find "$tmp/root" -type f -exec chmod 0644 {} +
chmod 1777 "$tmp/owned/tmp"

mkdir -p "$(dirname "$out")"
tarflags=(--format=gnu --sort=name --mtime="@$epoch" --numeric-owner --no-recursion)
# root/ is owned by root and read-only to the runtime user; owned/ belongs to it.
(cd "$tmp/root" && find etc var LICENSE | LC_ALL=C sort |
	tar "${tarflags[@]}" --owner=0 --group=0 -cf "$tmp/rootfs.tar" -T -)
(cd "$tmp/owned" && find tmp var/log/backstage-mcp | LC_ALL=C sort |
	tar "${tarflags[@]}" --owner=65532 --group=65532 -rf "$tmp/rootfs.tar" -T -)
mv "$tmp/rootfs.tar" "$out"
