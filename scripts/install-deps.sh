#!/usr/bin/env bash
# Installs the Debian packages routesim needs to build, test and plot.
# As root it runs apt-get; otherwise it prints the exact command to run.
#
#   scripts/install-deps.sh         what make, make check and make bench need (OpenMPI: make MPI=1,
#                                   GCC's nvptx offload compiler: make GPU=1)
#   scripts/install-deps.sh fuzz    also clang and libFuzzer, for make fuzz
set -euo pipefail

packages=(
  build-essential pkg-config
  libhdf5-dev libgsl-dev libcjson-dev libzip-dev zlib1g-dev check
  gnuplot-nox fonts-urw-base35
  python3-numpy python3-h5py python3-pandas python3-torch python3-pip python3-setuptools
  libopenmpi-dev openmpi-bin
  gcc-12-offload-nvptx
)
if [ "${1:-}" = "fuzz" ]; then
  packages+=(clang libclang-rt-dev libomp-dev)
elif [ $# -gt 0 ]; then
  echo "usage: scripts/install-deps.sh [fuzz]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  echo "routesim: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "routesim: missing Debian packages: ${missing[*]}" >&2
  echo "routesim: run:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
