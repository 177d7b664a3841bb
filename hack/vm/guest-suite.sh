#!/usr/bin/env bash
# Runs inside the VM (hack/vm/run-suite.sh -> run.sh -> guest-env.sh):
#   guest-suite.sh <results-dir> <test-name-filter> <binary-list-file>
# (an empty filter runs every test; the file names one test binary a line)
# Runs each integration test binary one test at a time (the tests share the
# kernel's module state and sysctls), keeps each output in
# <results-dir>/<binary>.log, and closes with the one summary line
#   e2e: N passed, M failed
# summed over the binaries' `test result:` lines. A binary that ends without
# such a line (crash, abort, timeout) counts as one failure.
set -uo pipefail

results="$1"
filter="$2"
mapfile -t binaries < "$3"

export RUST_BACKTRACE=1
passed=0
failed=0
for bin in "${binaries[@]}"; do
  name="$(basename "$bin")"
  log="$results/$name.log"
  echo "=== $name"
  # A hung test must not eat CI's whole budget.
  timeout --kill-after=10 1200 "$bin" --test-threads=1 ${filter:+"$filter"} 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  result="$(grep -E '^test result: ' "$log" | tail -n 1)"
  if [[ -z "$result" ]]; then
    echo "=== $name: exited with status $status without a test result line"
    failed=$((failed + 1))
    continue
  fi
  p="$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$result")"
  f="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$result")"
  passed=$((passed + p))
  failed=$((failed + f))
  if ((status != 0 && f == 0)); then
    echo "=== $name: exited with status $status after reporting no failure"
    failed=$((failed + 1))
  fi
done

summary="e2e: $passed passed, $failed failed"
echo "$summary" > "$results/summary"
echo "$summary"
((failed == 0))
