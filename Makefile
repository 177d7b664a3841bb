# kube-ipvs: `make test` is what CI runs (.ci/run).
#   setup     install the apt packages and virtme-ng (.venv/) the tests need
#   lint      rustfmt and clippy (warnings are errors) over the whole workspace
#   unit      cargo test of crates/* and the integration helpers' own tests: no root, no IPVS
#   fuzz-smoke  20,000 runs of every fuzz target (fuzz/, hack/fuzz.sh)
#   e2e       the integration tests, all in one VM booting Debian's kernel
#   test      setup, lint, unit, fuzz-smoke, e2e, stopping at the first failure
#   demo      run kube-ipvs on the example cluster (examples/) in the VM, with real traffic
#   fixtures  recapture the golden netlink fixtures from the real tools (VM)
#   bench     scale benchmark against ipvsadm/ipset/ip at 100, 1k, 10k services (host + one VM);
#             writes target/bench/report.md and scaling.svg (not part of test; BENCH_SIZES to choose)

.PHONY: setup lint unit fuzz-smoke e2e test demo fixtures bench

setup:
	hack/setup.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test
	cargo test -p kipvs-integration --lib

fuzz-smoke:
	hack/fuzz.sh 20000

e2e: setup
	hack/vm/run-suite.sh

test: setup lint unit fuzz-smoke e2e

demo: setup
	hack/demo.sh

fixtures: setup
	hack/capture-fixtures.sh

bench: setup
	hack/bench/run.sh
