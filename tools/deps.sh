#!/bin/sh
# deps.sh - installs the Debian packages mtl needs to build and test, when
# any is missing (make deps).  Needs root (or sudo) for apt-get; otherwise
# it says what to install and fails.
set -eu
pkgs="gcc make pkg-config libc6-dev libutf8proc-dev libmsgpack-dev libblis-dev libjansson-dev bats bats-support bats-assert clang libclang-rt-dev valgrind curl jq git libxml2-utils libopenmpi-dev openmpi-bin"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
	sudo=
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo=sudo
else
	echo "deps: not root; install them with: sudo apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
