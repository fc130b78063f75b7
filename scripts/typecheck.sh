#!/usr/bin/env bash
# mypy cannot follow setuptools' package-dir mapping (tools/ -> agentkit.tools, tui/ ->
# agentkit.tui), so type-check a throwaway tree of symlinks laid out as the installed package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tree="$root/.typecheck"
rm -rf "$tree"
mkdir -p "$tree/agentkit"
for f in "$root"/agentkit/*; do ln -s "$f" "$tree/agentkit/"; done
ln -s "$root/tools" "$tree/agentkit/tools"
ln -s "$root/tui" "$tree/agentkit/tui"
cd "$tree"
exec "$root/.venv/bin/mypy" --config-file "$root/pyproject.toml" -p agentkit "$@"
