#!/usr/bin/env bash
# Checks what `goreleaser release --snapshot --clean` left in dist/ and in
# local image storage (run by `make release-check` after the snapshot):
#   - checksums.txt matches every archive and SBOM;
#   - six CycloneDX SBOMs that list the module's dependencies;
#   - the linux/amd64 binary's `version` prints the snapshot version, the
#     commit's pseudo-version v0.0.0-<commit time>-<12 hex of the commit>
#     (what make build and go install of this commit print), the full
#     commit and the commit time;
#   - an image per Linux architecture: the right platform, the non-root
#     user, entrypoint, command, port and OCI labels, every file with its
#     owner and mode, and the very binary goreleaser built; the amd64 image is
#     started with podman and must print the same version.
# Env: PODMAN_FLAGS (default none: podman's default storage, as the
# podman-as-docker wrapper the snapshot built with); IMAGE_REPO (default
# ghcr.io/backstage-mcp/backstage-mcp, as .goreleaser.yaml).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck disable=SC2206
podman=(podman ${PODMAN_FLAGS-})
repo=${IMAGE_REPO:-ghcr.io/backstage-mcp/backstage-mcp}
fail() { echo "check-snapshot: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd dist && sha256sum --quiet -c checksums.txt) || fail "checksums.txt does not match dist/"
n=$(find dist -maxdepth 1 -name '*.cdx.json' | wc -l)
[ "$n" -eq 6 ] || fail "$n SBOMs in dist/, want 6"
for f in dist/*.cdx.json; do
	grep -q '"bomFormat": "CycloneDX"' "$f" && grep -q 'pkg:golang/github.com/prometheus/client_golang@' "$f" ||
		fail "bad SBOM $f"
done

commit=$(git rev-parse HEAD)
short=$(git rev-parse --short HEAD)
built=$(date -u -d "@$(git log -1 --format=%ct)" +%Y-%m-%dT%H:%M:%SZ)
version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' dist/metadata.json)
pseudo=0.0.0-$(date -u -d "@$(git log -1 --format=%ct)" +%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)
[ "$version" = "$pseudo" ] || fail "snapshot version \"$version\", want $pseudo (short commit $short)"

bin=dist/backstage-mcp_linux_amd64_v1/backstage-mcp
# A snapshot of a work tree with uncommitted changes says so, when the Go
# toolchain stamped that into the binary.
dirty= modified=
if go version -m "$bin" | grep -q 'vcs.modified=true'; then dirty=+dirty modified=' (modified)'; fi
wantver=$(printf 'backstage-mcp v%s%s\n  commit:  %s%s\n  built:   %s\n' "$version" "$dirty" "$commit" "$modified" "$built")
got=$("$bin" version)
[ "$(printf '%s\n' "$got" | head -3)" = "$wantver" ] || fail "$bin version printed
$got
want the first lines
$wantver"
printf '%s\n' "$got" | grep -q '^  go:      go1\.' || fail "$bin version prints no Go version"
echo "check-snapshot: $bin version: $(printf '%s' "$got" | tr '\n' ' ' | tr -s ' ')"

wantfiles='-rw-r--r-- 0:0 LICENSE
-rwxr-xr-x 0:0 backstage-mcp
drwxr-xr-x 0:0 etc
drwxr-xr-x 0:0 etc/backstage-mcp
-rw-r--r-- 0:0 etc/group
-rw-r--r-- 0:0 etc/passwd
drwxr-xr-x 0:0 etc/ssl
drwxr-xr-x 0:0 etc/ssl/certs
-rw-r--r-- 0:0 etc/ssl/certs/ca-certificates.crt
drwxrwxrwt 65532:65532 tmp
drwxr-xr-x 0:0 var
drwxr-xr-x 0:0 var/log
drwxr-xr-x 65532:65532 var/log/backstage-mcp'
for arch in amd64 arm64; do
	image=$repo:$version-$arch
	"${podman[@]}" image exists "$image" || fail "image $image was not built"
	f='{{.Os}}/{{.Architecture}}|{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{json .Config.ExposedPorts}}'
	f+='|{{index .Config.Labels "org.opencontainers.image.version"}}|{{index .Config.Labels "org.opencontainers.image.revision"}}'
	f+='|{{index .Config.Labels "org.opencontainers.image.created"}}|{{index .Config.Labels "org.opencontainers.image.licenses"}}'
	f+='|{{index .Config.Labels "org.opencontainers.image.source"}}|{{index .Config.Labels "io.modelcontextprotocol.server.name"}}'
	got=$("${podman[@]}" image inspect --format "$f" "$image")
	want="linux/$arch|65532:65532|[\"/backstage-mcp\"]|[\"serve\",\"--http\",\"0.0.0.0:8080\",\"--config\",\"/etc/backstage-mcp/config.yaml\"]|{\"8080/tcp\":{}}"
	want+="|$version|$commit|$built|Apache-2.0|https://github.com/backstage-mcp/backstage-mcp|io.github.backstage-mcp/backstage-mcp"
	[ "$got" = "$want" ] || fail "image $image config:
 got $got
want $want"
	# Every file in the image, with owner and mode (the same list as
	# `make image` checks), and the binary is the one goreleaser built.
	# podman export (of a container created, never started) needs no root.
	ctr=$("${podman[@]}" create --platform "linux/$arch" "$image")
	"${podman[@]}" export -o "$tmp/fs.tar" "$ctr"
	"${podman[@]}" rm "$ctr" >/dev/null
	files=$(tar --numeric-owner -tvf "$tmp/fs.tar" |
		awk '{o = $2; sub("/", ":", o); n = $6; sub("/$", "", n); print $1, o, n}' | LC_ALL=C sort -k3)
	inimage=$(tar -xOf "$tmp/fs.tar" backstage-mcp | sha256sum)
	[ "$files" = "$wantfiles" ] || fail "image $image files:
$files
want
$wantfiles"
	built_bin=$(find dist -path "dist/backstage-mcp_linux_${arch}_*/backstage-mcp")
	[ "$inimage" = "$(sha256sum <"$built_bin")" ] || fail "image $image holds a binary other than $built_bin"
	size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image")
	echo "check-snapshot: image $image: linux/$arch, user 65532:65532, entrypoint /backstage-mcp, labels, 13 files, binary from $built_bin; $((size / 1000000)) MB unpacked"
done

# Start the amd64 image, as its own user, with no capabilities. The
# --ulimit values stay at or below this shell's hard limits: podman's own
# defaults raise them, which needs CAP_SYS_RESOURCE (see
# server/e2e/image/image_test.go, podmanAttempts).
image=$repo:$version-amd64
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
if out=$("${podman[@]}" run --rm --network none --read-only --cap-drop ALL --security-opt no-new-privileges \
	--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$image" version 2>&1); then
	[ "$(printf '%s\n' "$out" | head -3)" = "$wantver" ] || fail "podman run $image version printed
$out"
	echo "check-snapshot: podman run $image version: the same version"
else
	echo "check-snapshot: CONTAINERS CANNOT RUN HERE, $image not started (config, labels and binary checked above): $out"
fi

# Older snapshot images would pile up in local storage, one pair per commit.
"${podman[@]}" images --format '{{.Repository}}:{{.Tag}}' "$repo" |
	grep -E -- ':(0\.0\.0-[0-9]{14}-[0-9a-f]{12}|[0-9.]+-SNAPSHOT-[0-9a-f]+)-' | grep -v -- ":$version-" | xargs -r "${podman[@]}" rmi -f >/dev/null || true
echo "check-snapshot: ok ($version)"
