#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that model.Load needs
# (github.com/yalue/onnxruntime_go v1.27.0 wants runtime 1.24 or newer).
#
# Debian carries no ONNX Runtime; the npm package onnxruntime-node ships the
# linux x64 library. This script packs that package with npm into a
# temporary directory, extracts only the library (no node_modules are kept)
# and stores it as
#
#     ${AETHER_CACHE_DIR:-$HOME/.cache/aether}/onnxruntime/VERSION/libonnxruntime.so
#
# It does nothing when the file is already there. The library's path is the
# last line printed; model.Load finds it there by default, or point
# ONNXRUNTIME_SHARED_LIBRARY_PATH at it.
#
# Usage: scripts/onnxruntime.sh [VERSION]   (default: ONNXRUNTIME_VERSION or 1.24.3)
set -euo pipefail

version="${1:-${ONNXRUNTIME_VERSION:-1.24.3}}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "onnxruntime.sh: version must look like 1.24.3, got '$version'" >&2
  exit 2
fi
cache="${AETHER_CACHE_DIR:-$HOME/.cache/aether}"
dest_dir="$cache/onnxruntime/$version"
dest="$dest_dir/libonnxruntime.so"

if [[ -s "$dest" ]]; then
  echo "$dest"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) echo "onnxruntime.sh: only linux x64 is supported, this is $(uname -s)/$(uname -m)" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "onnxruntime.sh: npm is required (Debian: apt-get install -y npm)" >&2; exit 1; }

# The package's install script would fetch GPU parts; packing never runs it,
# but keep it off in case npm does.
export ONNXRUNTIME_NODE_INSTALL=skip

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "onnxruntime.sh: packing onnxruntime-node@$version" >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tgz="$(ls "$tmp"/onnxruntime-node-*.tgz 2>/dev/null | head -n1 || true)"
[[ -n "$tgz" ]] || { echo "onnxruntime.sh: npm pack produced no tarball" >&2; exit 1; }

tar -xzf "$tgz" -C "$tmp" --wildcards 'package/bin/napi-v6/linux/x64/libonnxruntime.so.1*'
lib="$(ls "$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1* 2>/dev/null | head -n1 || true)"
[[ -n "$lib" && -s "$lib" ]] || { echo "onnxruntime.sh: libonnxruntime.so.1 not found in onnxruntime-node@$version" >&2; exit 1; }

mkdir -p "$dest_dir"
# Copy then rename, so a concurrent reader never sees a partial file.
cp "$lib" "$dest.tmp.$$"
chmod 0644 "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
echo "$dest"
