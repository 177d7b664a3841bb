#!/usr/bin/env bash
# `make demo`: builds kube-ipvs on the host and runs it on the example
# cluster (examples/) inside one VM booting Debian's kernel, showing
# `ipvsadm -Ln`, the kube-ipvs0 addresses and real requests through the
# ClusterIPs (hack/vm/guest-demo.sh).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo build -p kube-ipvs
KIPVS_VM_LABEL=demo exec hack/vm/run.sh "$repo/target/vm-results/demo" "$repo/hack/vm/guest-demo.sh" "$repo"
