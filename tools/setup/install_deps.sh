#!/bin/sh
# Installs the Debian 12 packages mrtrain needs to build, test and run its examples (iproute2:
# the multi-host test builds network namespaces with `ip`).
# Idempotent: apt-get skips what is already installed. Uses sudo when not run as root.
set -eu
PACKAGES="bazel-bootstrap bazel-platforms g++ libopenblas-dev libspdlog-dev libfmt-dev catch2
libyaml-cpp-dev libcli11-dev libboost-dev libboost-serialization-dev zlib1g-dev libssl-dev
libzip-dev nlohmann-json3-dev dataset-fashion-mnist iproute2"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
else
  echo "all build dependencies are installed"
fi
