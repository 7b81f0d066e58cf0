#!/usr/bin/env bash
# Installs the system libraries the package links against (Debian or Ubuntu):
# OpenBLAS, libpng, zlib and pkg-config. Runs apt-get only when
# something is missing; needs root for that.
set -euo pipefail

if pkg-config --exists openblas libpng zlib 2>/dev/null; then
    echo "OpenBLAS, libpng and zlib are present (pkg-config finds them); nothing to install"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "error: libopenblas-dev, libpng-dev, zlib1g-dev or pkg-config is missing; run this script as root" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev libpng-dev zlib1g-dev pkg-config
echo "installed libopenblas-dev, libpng-dev, zlib1g-dev and pkg-config"
