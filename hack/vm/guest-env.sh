#!/bin/sh
# Runs inside the VM (started by hack/vm/run.sh):
#   guest-env.sh <results-dir> <command> [args...]
# Marks the results directory (so the host can tell "the guest ran" from a
# boot failure), prepares the kernel and the filesystem like a node, then
# runs the command, whose exit status becomes the VM's.
results="$1"
shift

date -u +%Y-%m-%dT%H:%M:%SZ > "$results/started"

# The tools live in /usr/sbin and /sbin; tests spawn them by name.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

# Debian builds all of these as modules; a test must not depend on another
# test having triggered an autoload. The list covers the IPVS schedulers
# kube-proxy offers, kube-ipvs0 (dummy), pods (veth, bridge), netlink captures
# (nlmon), conntrack, the ipset types kube-proxy creates and the nf_tables
# expressions and xt compat matches the rules use.
modules="
  ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_sed ip_vs_nq ip_vs_mh
  dummy veth bridge br_netfilter nlmon
  nfnetlink nf_conntrack nf_conntrack_netlink nf_nat
  ip_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet
  ip_set_hash_net ip_set_bitmap_port xt_set
  nf_tables nft_compat nft_chain_nat nft_ct nft_fib nft_fib_ipv4 nft_fib_ipv6 nft_fib_inet
  nft_masq nft_nat nft_reject nft_reject_ipv4 nft_reject_inet
  xt_MASQUERADE xt_mark xt_comment xt_conntrack xt_addrtype sctp
"
failed=""
for m in $modules; do
  modprobe "$m" 2>/dev/null || failed="$failed $m"
done
[ -z "$failed" ] || echo "guest-env: could not load:$failed" >&2

# `ip netns add` keeps its mounts under /run/netns (/run is a tmpfs here).
mkdir -p /run/netns
sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 2>/dev/null
ip link set lo up

exec "$@"
