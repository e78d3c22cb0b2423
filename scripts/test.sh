#!/usr/bin/env bash
# npm test: the whole tap suite, then one closing line "N passed, N failed" (exit code: tap's).
set -uo pipefail
# A tag of this run in every database, key prefix and queue name the tests make, so that two
# runs on one machine never meet.
export TEST_RUN_ID="${TEST_RUN_ID:-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
npx tap "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: [0-9]+' "$out" | tail -n 1)
total=$(sed -nE 's/.*total: ([0-9]+).*/\1/p' <<<"$summary")
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
if [ -z "$total" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "${pass:-0} passed, $((total - ${pass:-0})) failed"
exit "$status"
