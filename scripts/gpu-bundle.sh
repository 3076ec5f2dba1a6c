#!/usr/bin/env bash
# Copies what a GPU machine without a compiler needs to run a binary of
# `make GPU=1` beside it: the libgomp nvptx plugin (libgomp loads it by name
# when a target region first runs) and every shared library the binary
# links, except the C library's own, which every machine has. Run the
# binary there with LD_LIBRARY_PATH=DIR.
#
#   scripts/gpu-bundle.sh BINARY DIR
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/gpu-bundle.sh BINARY DIR" >&2; exit 2; }
bin=$1 dir=$2
mkdir -p "$dir"
plugin=$(ldconfig -p 2>/dev/null | sed -n 's/.*libgomp-plugin-nvptx\.so\.1 .*=> //p' | head -n 1)
[ -n "$plugin" ] || plugin=/usr/lib/x86_64-linux-gnu/libgomp-plugin-nvptx.so.1
if [ ! -e "$plugin" ]; then
  echo "gpu-bundle: libgomp-plugin-nvptx.so.1 not found (scripts/install-deps.sh installs gcc-12-offload-nvptx)" >&2
  exit 1
fi
cp -L "$plugin" "$dir/"
# the libraries of the binary and of the plugin, without the C library's
ldd "$bin" "$plugin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  grep -Ev '/(libc|libm|libpthread|libdl|librt|libresolv|ld-linux[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$dir/"; done
