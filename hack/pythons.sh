#!/usr/bin/env bash
# The unit and contract tiers on every other Python of $PYTHON_VERSIONS found here, one venv each
# (.venv-3.X, made by `make .venv-3.X/.installed`). The runs are hermetic (free ports, no shared
# state), so they run side by side: on 2 cores that saves about a minute of `make test`.
# Usage: hack/pythons.sh MAIN_VERSION VERSION...
set -euo pipefail
cd "$(dirname "$0")/.."
main=$1; shift
pids=() versions=()
for v in "$@"; do
  if [[ $v == "$main" ]]; then echo "==> python$v: covered by .venv"; continue; fi
  if ! hack/find-python.sh "$v" >/dev/null; then echo "==> python$v: not installed here, skipped"; continue; fi
  make --no-print-directory ".venv-$v/.installed"
  echo "==> python$v: unit + contract tiers (log: .venv-$v/pythons.log)"
  ".venv-$v/bin/pytest" -m "unit or contract" -q -p no:cacheprovider >".venv-$v/pythons.log" 2>&1 &
  pids+=($!) versions+=("$v")
done
failed=0
for i in "${!pids[@]}"; do
  v=${versions[$i]}
  if wait "${pids[$i]}"; then
    echo "==> python$v: $(tail -n 1 ".venv-$v/pythons.log")"
  else
    echo "==> python$v FAILED:"; tail -n 60 ".venv-$v/pythons.log"; failed=1
  fi
done
exit $failed
