#!/usr/bin/env bash
# Build llama-cpp-python once into a wheel directory of our own and reuse it afterwards.
# PyPI ships only the source, and compiling takes about five minutes on two cores.
set -euo pipefail
: "${WHEELS:?}" "${LLAMA_VERSION:?}" "${PIP:?}"
mkdir -p "$WHEELS"
if ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "llama-cpp-python $LLAMA_VERSION: using the cached wheel in $WHEELS"
  exit 0
fi
echo "llama-cpp-python $LLAMA_VERSION: compiling (CMAKE_ARGS='${CMAKE_ARGS:-}'), about 5 minutes on 2 cores..."
start=$(date +%s)
# --no-cache-dir: pip's wheel cache would hand back a wheel built elsewhere with other flags.
$PIP wheel --no-deps --no-cache-dir --wheel-dir "$WHEELS.partial" "llama-cpp-python==$LLAMA_VERSION" \
  2>&1 | while IFS= read -r line; do
    case "$line" in *"still running"*|*Building*|*Successfully*|*ERROR*|*rror:*) echo "  $line";; esac
  done
mv "$WHEELS.partial"/llama_cpp_python-*.whl "$WHEELS"/
rmdir "$WHEELS.partial" 2>/dev/null || true
echo "llama-cpp-python: built in $(( $(date +%s) - start )) s"
