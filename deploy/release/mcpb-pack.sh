#!/usr/bin/env bash
# Packs one MCP bundle (.mcpb) for desktop clients around a binary that
# goreleaser has just built (a post hook of the build, once per target).
#
# The bundle holds manifest.json (deploy/mcpb/manifest.json with this
# release's version and this one platform), server/backstage-mcp (.exe on
# Windows) and the LICENSE, packed and validated by the pinned mcpb CLI
# (deploy/release/mcpb-cli, installed by `make mcpb-cli`).
#
# Usage: deploy/release/mcpb-pack.sh BINARY GOOS GOARCH VERSION OUT.mcpb
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${1:?usage: mcpb-pack.sh BINARY GOOS GOARCH VERSION OUT.mcpb}
goos=${2:?} goarch=${3:?} version=${4:?} out=${5:?}
mcpb=${MCPB:-deploy/release/mcpb-cli/node_modules/.bin/mcpb}
[ -x "$mcpb" ] || { echo "mcpb-pack: $mcpb missing: run \`make mcpb-cli\` (npm ci in deploy/release/mcpb-cli)" >&2; exit 1; }

case $goos in
darwin | linux) platform=$goos exe= ;;
windows) platform=win32 exe=.exe ;;
*) echo "mcpb-pack: no MCPB platform for GOOS $goos" >&2; exit 1 ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/server"
cp "$bin" "$stage/server/backstage-mcp$exe"
chmod 0755 "$stage/server/backstage-mcp$exe"
cp LICENSE "$stage/LICENSE"
# The manifest for this platform alone: its version is the release's, and
# on Windows the command names the .exe (no platform override needed).
VERSION=$version PLATFORM=$platform EXE=$exe node -e '
const fs = require("fs");
const m = JSON.parse(fs.readFileSync("deploy/mcpb/manifest.json", "utf8"));
m.version = process.env.VERSION;
m.compatibility = { ...m.compatibility, platforms: [process.env.PLATFORM] };
m.server.entry_point = "server/backstage-mcp" + process.env.EXE;
m.server.mcp_config.command = "${__dirname}/server/backstage-mcp" + process.env.EXE;
delete m.server.mcp_config.platform_overrides;
fs.writeFileSync(process.argv[1], JSON.stringify(m, null, 2) + "\n");
' "$stage/manifest.json"

"$mcpb" validate "$stage/manifest.json" >/dev/null
mkdir -p "$(dirname "$out")"
"$mcpb" pack "$stage" "$out" >/dev/null
echo "mcpb-pack: $out ($goos/$goarch, $version)"
