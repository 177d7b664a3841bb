#!/usr/bin/env bash
# `make bench`: kube-ipvs against the kernel's own tools at 100, 1 000 and
# 10 000 ClusterIP services x 10 endpoints, in ONE VM boot, then the table
# and the plot:
#
#   target/bench/report.md    one row per size, the ratios, the goals
#   target/bench/scaling.svg  time against services, log-log
#   target/bench/vm/          raw.json and the daemons' logs
#
# Steps: release build on the host (the guest sees target/); the planner
# bench on the host (criterion, `cargo bench -p kipvs-planner`), before the
# VM so the two never share the CPUs; one VM running the driver
# (`kipvs-bench guest`, hack/bench/driver/src/guest.rs); the report on the host.
# Every figure in the table is a ratio within the run, so TCG is fine.
#
# Environment:
#   BENCH_SIZES="100 1000 10000"   the sizes (services), e.g. "100 1000" while developing
#   BENCH_OUT=dir                  where the report, the plot and vm/ go (default target/bench)
#   BENCH_NOTE="..."               a remark for the report (say, what else loaded the machine)
#   BENCH_SKIP_PLANNER=1           skip the host planner bench (the report leaves its columns empty)
#   KIPVS_VM_*                     see hack/vm/run.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
sizes="${BENCH_SIZES:-100 1000 10000}"
out="${BENCH_OUT:-$repo/target/bench}"
results="$out/vm"
mkdir -p "$out"
start=$SECONDS
# The commit the binaries are built from (taken now: the run is long).
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!target' 2>/dev/null || echo '+changes')"

echo "bench: building kube-ipvs and the bench driver (release) on the host"
cargo build --release -p kube-ipvs -p kipvs-bench

criterion=()
if [[ "${BENCH_SKIP_PLANNER:-0}" != 1 ]]; then
  echo "bench: planner alone on the host (criterion), sizes: $sizes"
  BENCH_SIZES="$sizes" cargo bench -p kipvs-planner --bench planner
  criterion=(--criterion "$repo/target/criterion")
fi

echo "bench: one VM for sizes: $sizes"
status=0
KIPVS_VM_LABEL=bench KIPVS_VM_TIMEOUT="${KIPVS_VM_TIMEOUT:-5400}" \
  "$repo/hack/vm/run.sh" "$results" "$repo/target/release/kipvs-bench" guest \
  --sizes "$sizes" --results "$results" --daemon "$repo/target/release/kube-ipvs" || status=$?
if [[ ! -s "$results/raw.json" ]]; then
  echo "bench: the VM wrote no results (status $status)" >&2
  exit $((status == 0 ? 1 : status))
fi

host="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), QEMU TCG guest"
"$repo/target/release/kipvs-bench" report --raw "$results/raw.json" "${criterion[@]}" \
  --out "$out" --commit "$commit" --host "$host" --command "make bench${BENCH_SIZES:+ BENCH_SIZES=\"$sizes\"}" \
  --note "${BENCH_NOTE:-}"
echo "bench: done in $((SECONDS - start)) s: ${out#"$repo/"}/report.md, ${out#"$repo/"}/scaling.svg"
exit "$status"
