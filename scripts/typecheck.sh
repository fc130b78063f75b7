#!/usr/bin/env bash
# mypy cannot follow setuptools' package-dir mapping (tools/ -> agentkit.tools, tui/ ->
# agentkit.tui), so type-check a throwaway tree of symlinks laid out as the installed
# package. Each run gets its own tree, so concurrent runs do not trip over each other.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tree=$(mktemp -d "${TMPDIR:-/tmp}/agentkit-typecheck.XXXXXX")
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/agentkit"
for f in "$root"/agentkit/*; do ln -s "$f" "$tree/agentkit/"; done
ln -s "$root/tools" "$tree/agentkit/tools"
ln -s "$root/tui" "$tree/agentkit/tui"
cd "$tree"
"$root/.venv/bin/mypy" --config-file "$root/pyproject.toml" --cache-dir "$root/.mypy_cache" \
  -p agentkit "$@"
