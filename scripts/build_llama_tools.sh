#!/usr/bin/env bash
# Build llama.cpp's own programs (llama-server, llama-batched-bench) once, from the llama.cpp
# that the llama-cpp-python sdist vendors, and reuse them afterwards. They are the real server
# of the remote-tier tests and the peer baseline of the benchmarks; about 8 minutes on 2 cores.
#
# Environment (the Makefile sets all of them):
#   LLAMA_VERSION     the llama-cpp-python release whose vendored llama.cpp is built
#   CACHE             the agentkit cache folder (default ~/.cache/agentkit)
#   LLAMA_CMAKE_ARGS  extra CMake flags, the same ones the wheel is built with
#   PIP               how to run pip (default "python3 -m pip")
# Prints the folder that holds the binaries as its last line.
set -euo pipefail
: "${LLAMA_VERSION:?}"
CACHE="${CACHE:-$HOME/.cache/agentkit}"
LLAMA_CMAKE_ARGS="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF}"
PIP="${PIP:-python3 -m pip}"
TOOLS="llama-server llama-batched-bench"

# One folder per version and flag set, hashed the way the Makefile names wheel folders, so a
# GPU build never reuses a CPU one.
flags_hash=$(printf '%s' "$LLAMA_VERSION $LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)
dest="$CACHE/llama.cpp/$LLAMA_VERSION-$flags_hash"
have_all() {
  local t
  for t in $TOOLS; do [ -x "$dest/bin/$t" ] || return 1; done
}
if have_all; then
  echo "llama.cpp tools ($LLAMA_VERSION): using the cached binaries in $dest/bin"
  echo "$dest/bin"
  exit 0
fi

# The sdist is kept too: a rebuild with other flags should not download it again.
sdists="$CACHE/sdist"
sdist="$sdists/llama_cpp_python-$LLAMA_VERSION.tar.gz"
mkdir -p "$sdists"
if [ ! -f "$sdist" ]; then
  echo "llama.cpp tools: downloading the llama-cpp-python $LLAMA_VERSION sdist into $sdists"
  # --no-binary for this one package only: with :all: pip would also compile the build
  # backend and its dependencies from source just to read the sdist's metadata.
  $PIP download --quiet --no-binary llama-cpp-python --no-deps --dest "$sdists" \
    "llama-cpp-python==$LLAMA_VERSION"
fi

# Prefer the machine's cmake and ninja; otherwise install them from PyPI next to pip.
py_bin=$(dirname "$(command -v "${PIP%% *}")")
for tool in cmake ninja; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "$py_bin/$tool" ]; then
    echo "llama.cpp tools: $tool not found, installing it from PyPI"
    $PIP install --quiet "$tool"
  fi
done
PATH="$PATH:$py_bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/agentkit-llama-tools.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$sdist" -C "$work"
src="$work/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
echo "llama.cpp tools: configuring (LLAMA_CMAKE_ARGS='$LLAMA_CMAKE_ARGS')"
start=$(date +%s)
# Static libraries: the binaries are copied out of the build folder, so they must not point
# at shared objects inside it. TESTS/EXAMPLES off keeps the build to the two programs.
# shellcheck disable=SC2086  # LLAMA_CMAKE_ARGS is a list of flags
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF $LLAMA_CMAKE_ARGS \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
echo "llama.cpp tools: compiling $TOOLS, about 8 minutes on 2 cores..."
# Print one progress line per 10% instead of ninja's hundreds of lines.
ninja -C "$work/build" $TOOLS 2>&1 | while IFS= read -r line; do
  case "$line" in
    \[*/*\]*)
      step=${line#[}; step=${step%%]*}; done_=${step%/*}; total=${step#*/}
      if [ "$total" -gt 0 ] && [ $(( done_ * 10 / total )) -gt "${shown:--1}" ]; then
        shown=$(( done_ * 10 / total )); echo "  [$done_/$total]"
      fi;;
    *rror*|*FAILED*) echo "  $line";;
  esac
done
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "llama.cpp tools: the build failed (see above)" >&2; exit 1; }

# Install atomically: a half-copied folder must never look like a finished cache entry.
mkdir -p "$dest.partial/bin"
for t in $TOOLS; do cp "$work/build/bin/$t" "$dest.partial/bin/"; done
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "llama.cpp tools: built in $(( $(date +%s) - start )) s"
echo "$dest/bin"
