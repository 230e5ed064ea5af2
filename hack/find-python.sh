#!/usr/bin/env bash
# Print the path of a working Python X.Y interpreter (`hack/find-python.sh 3.12`), or print
# nothing and exit 1. Looks at python3.X on PATH (a pyenv shim counts only if it really runs
# that version: pyenv's shims exist for versions that are installed but not selected), then
# in pyenv's versions folder. Used by `make pythons`.
set -uo pipefail
want="${1:?usage: $0 X.Y}"

works() {
  "$1" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$want')" >/dev/null 2>&1
}

if candidate=$(command -v "python$want") && works "$candidate"; then
  echo "$candidate"
  exit 0
fi
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
found=""
for candidate in "$root/versions/$want"/bin/python"$want" "$root/versions/$want".*/bin/python"$want"; do
  if [[ -x $candidate ]] && works "$candidate"; then found=$candidate; fi
done
[[ -n $found ]] || exit 1
echo "$found"
