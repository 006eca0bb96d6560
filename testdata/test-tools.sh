#!/bin/sh
# Installs the programs the tests run, where this machine's package manager
# allows it without a password (Debian's apt-get as root or with sudo -n;
# Homebrew on macOS), and otherwise says in one line which are missing. It
# never fails: the tests that need a missing program skip with one line
# naming it, unless BACKSTAGE_MCP_REQUIRE_TOOLS is set (CI), where they fail.
#
# usage: test-tools.sh PROGRAM:DEBIAN-PACKAGE[:BREW-FORMULA] ...
missing="" debs="" brews=""
for spec in "$@"; do
	prog=${spec%%:*}
	rest=${spec#*:}
	deb=${rest%%:*}
	brew=""
	case $rest in *:*) brew=${rest#*:} ;; esac
	command -v "$prog" >/dev/null 2>&1 && continue
	missing="$missing $prog"
	debs="$debs $deb"
	[ -n "$brew" ] && brews="$brews $brew"
done
[ -z "$missing" ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
	sudo=""
	if [ "$(id -u)" != 0 ]; then
		if sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="none"; fi
	fi
	if [ "$sudo" != none ]; then
		echo "test-tools: installing Debian packages:$debs"
		# shellcheck disable=SC2086 # word splitting is wanted
		if $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $debs >/dev/null; then
			exit 0
		fi
	fi
elif command -v brew >/dev/null 2>&1 && [ -n "$brews" ]; then
	echo "test-tools: installing with Homebrew:$brews"
	# shellcheck disable=SC2086
	brew install $brews && exit 0
fi
echo "test-tools: not installed:$missing — the tests that need them will be skipped (Debian packages:$debs)"
exit 0
