#!/usr/bin/env bash
# `make e2e`: builds the integration tests on the host, then boots ONE VM that
# runs all of them (hack/vm/guest-suite.sh). The guest sees the host's target/
# directory, and everything runs several times slower in it, so nothing is
# compiled there.
#
# Exit status: the suite's (0 only when every test passed), or 3 when the VM
# never started the suite twice in a row (see hack/vm/run.sh).
#
# While developing, a subset runs in the same way:
#   hack/vm/run-suite.sh [BINARY-NAME-PART [TEST-NAME-FILTER]]
# e.g. `hack/vm/run-suite.sh daemon_resilience drift` runs only the tests of
# integration/tests/daemon_resilience.rs whose names contain "drift".
set -euo pipefail

only_binary="${1:-}"
test_filter="${2:-}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
results="${KIPVS_E2E_RESULTS:-$repo/target/vm-results/e2e}"

echo "e2e: building the daemon, the fake API server and the integration tests on the host"
# The daemon tests run these binaries; they sit next to the test binaries.
cargo build -p kube-ipvs -p kipvs-fake-apiserver
# Each file of integration/tests/ is its own test binary; cargo's JSON
# messages name their executables.
mapfile -t binaries < <(
  cargo test -p kipvs-integration --no-run --message-format=json |
    /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    target = msg.get("target") or {}
    if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
            and "test" in target.get("kind", [])
            and "/integration/tests/" in target.get("src_path", "")):
        print(msg["executable"])
'
)
if [[ -n "$only_binary" ]]; then
  selected=()
  for bin in "${binaries[@]}"; do
    # Test executables are named <file>-<hash>.
    [[ "$(basename "$bin")" == *"$only_binary"* ]] && selected+=("$bin")
  done
  binaries=("${selected[@]}")
fi
if ((${#binaries[@]} == 0)); then
  echo "e2e: no integration test binaries found under integration/tests/" >&2
  exit 1
fi
printf 'e2e: test binary %s\n' "${binaries[@]#"$repo/"}"

# The list goes to the guest in a file: virtme-ng passes the guest command
# on the kernel command line, whose 2048 bytes a list of test binaries
# overflows (the kernel then panics before anything runs, silently).
list="$results.binaries"
mkdir -p "$(dirname "$list")"
printf '%s\n' "${binaries[@]}" > "$list"

start=$SECONDS
status=0
KIPVS_VM_LABEL=e2e "$repo/hack/vm/run.sh" "$results" "$repo/hack/vm/guest-suite.sh" "$results" "$test_filter" "$list" || status=$?
echo "e2e: VM boot + suite took $((SECONDS - start)) s; logs in ${results#"$repo/"}/"
# Repeat the guest's closing line last, so it is the log's last word even if
# the console interleaved it with the guest's shutdown messages.
if ((status == 3)); then
  echo "e2e: infrastructure failure (VM did not start the suite)"
elif [[ -f "$results/summary" ]]; then
  cat "$results/summary"
else
  echo "e2e: the guest ended before writing its summary (status $status)"
  ((status != 0)) || status=1
fi
exit "$status"
