#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (one per parser of bytes from outside:
# kernel replies of every netlink family, the funnel's datagram splitter and
# error decoder, the manifest parser).
#
#   hack/fuzz.sh [RUNS] [TARGET...]    default: 20000 runs of every target
#
# `make fuzz-smoke` runs the default; a long run is e.g.
# `hack/fuzz.sh 10000000 ipvs_reply`. A crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the script: turn it into a regression test
# of the owning crate, then fix it.
#
# Toolchain: cargo-fuzz (pinned, installed here when missing) on the stable
# compiler. libFuzzer's instrumentation uses flags stable rustc only accepts
# with RUSTC_BOOTSTRAP=1, and the sanitizers need nightly, so the targets are
# built without one (`-s none`) but with debug assertions and overflow checks
# (`-a`): a panic, an overflow or an out-of-bounds index is the crash.
#
# Seeds come from the golden fixtures and the example manifests
# (hack/fuzz_seeds.py writes them to fuzz/seeds/, regenerated each run);
# what libFuzzer finds goes to fuzz/corpus/ (not committed).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo_fuzz_version="0.13.2"
runs="${1:-20000}"
shift || true

log() { echo "fuzz: $*"; }

if cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
  log "cargo-fuzz $cargo_fuzz_version present"
else
  log "installing cargo-fuzz $cargo_fuzz_version"
  cargo install --locked --quiet cargo-fuzz --version "$cargo_fuzz_version"
fi

rm -rf "$repo/fuzz/seeds"
/usr/bin/python3 "$repo/hack/fuzz_seeds.py" "$repo/fuzz/seeds"

cd "$repo/fuzz"
export RUSTC_BOOTSTRAP=1
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo fuzz list)
fi
# A smoke run is over in seconds: a debug build (-D) compiles in a fraction
# of an optimised one and runs its few thousand inputs just as well.
profile=()
if ((runs <= 100000)); then
  profile=(-D)
fi
cargo fuzz build -s none -a "${profile[@]}"
mkdir -p logs
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target"
  log "$target: $runs runs"
  if ! cargo fuzz run -s none -a "${profile[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -runs="$runs" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    >"logs/$target.log" 2>&1; then
    tail -n 40 "logs/$target.log" >&2
    echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "logs/$target.log" | sed "s/^/fuzz: $target /"
done
log "every target ran $runs times without a crash"
