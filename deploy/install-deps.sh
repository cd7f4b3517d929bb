#!/usr/bin/env bash
# Installs the Debian packages that nudge's build and tests need. Idempotent: it
# installs only what is missing, and does nothing (not even apt-get update) when
# everything is there. Run as root, or as a user with sudo.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libcaf-dev libboost-dev libmsgpack-cxx-dev liblmdb-dev catch2
  rapidjson-dev libtomlplusplus-dev libcli11-dev libssl-dev libspdlog-dev
  curl
  clang libclang-rt-14-dev   # tests/fuzz (libFuzzer)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
