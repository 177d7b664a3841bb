#!/usr/bin/env bash
# `make fixtures` (or `hack/capture-fixtures.sh [fixture-name...]` to
# recapture only some): records what the real tools (ipvsadm, ipset, nft,
# iptables-nft, ip, conntrack) say to the kernel over netlink, and what the
# kernel answers, as golden fixtures for the packet crates' tests.
#
# On the host it boots the VM once (hack/vm/run.sh) running this same script
# with --in-vm, then turns each capture into crates/<crate>/tests/fixtures/<name>.txt
# with hack/pcap_to_fixtures.py (format: crates/fixtures/src/lib.rs).
#
# In the VM, each capture gets a network namespace of its own, so it starts
# from an empty IPVS table, no ipsets, no nf_tables and no links: the set-up
# commands run first, then an nlmon tap (per namespace since Linux 4.x) starts
# recording, the one command runs, and the tap stops. The converter keeps only
# the messages stamped between the command's start and end and of the
# fixture's netlink protocol, which leaves out tcpdump's own chatter.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Netlink protocols (include/uapi/linux/netlink.h).
readonly NETLINK_ROUTE=0 NETLINK_NETFILTER=12 NETLINK_GENERIC=16

# ---------------------------------------------------------------------------
# The captures: cap <fixture path> <protocol> <set-up commands> <command> [stdin]
# Set-up commands run in the same namespace before the capture starts. A
# command that is expected to fail is prefixed with `!` (e.g. ipset test of an
# absent element): its status is recorded, not treated as an error.
# ---------------------------------------------------------------------------
captures() {
  local ipvs=crates/packet-ipvs/tests/fixtures
  local ipset=crates/packet-ipset/tests/fixtures
  local nft=crates/packet-nftables/tests/fixtures
  local net=crates/netlink/tests/fixtures

  local svc4='ipvsadm -A -t 10.96.0.10:80 -s rr'
  local svc6='ipvsadm -A -t [fd00::10]:80 -s rr'
  local dest4="$svc4; ipvsadm -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1"
  local many="$dest4
    ipvsadm -a -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 2 -x 100 -y 10
    $svc6; ipvsadm -a -t [fd00::10]:80 -r [fd00:244::2]:8080 -m
    ipvsadm -A -u 10.96.0.10:53 -s wrr -p 600
    ipvsadm -A --sctp-service 10.96.0.11:9000 -s mh -b mh-fallback,mh-port
    ipvsadm -A -f 100 -s rr"

  # IPVS, generic netlink family "IPVS".
  cap $ipvs/new_service_tcp_v4 $NETLINK_GENERIC '' "$svc4"
  cap $ipvs/new_service_udp_persistent $NETLINK_GENERIC '' 'ipvsadm -A -u 10.96.0.10:53 -s wrr -p 600'
  cap $ipvs/new_service_sctp_mh_flags $NETLINK_GENERIC '' 'ipvsadm -A --sctp-service 10.96.0.11:9000 -s mh -b mh-fallback,mh-port'
  cap $ipvs/new_service_tcp_v6 $NETLINK_GENERIC '' "$svc6"
  cap $ipvs/new_service_fwmark $NETLINK_GENERIC '' 'ipvsadm -A -f 100 -s rr'
  cap $ipvs/set_service $NETLINK_GENERIC "$svc4" 'ipvsadm -E -t 10.96.0.10:80 -s wrr'
  cap $ipvs/del_service $NETLINK_GENERIC "$svc4" 'ipvsadm -D -t 10.96.0.10:80'
  cap $ipvs/new_dest_v4 $NETLINK_GENERIC "$svc4" 'ipvsadm -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1'
  cap $ipvs/new_dest_thresholds $NETLINK_GENERIC "$svc4" 'ipvsadm -a -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 2 -x 100 -y 10'
  cap $ipvs/new_dest_v6 $NETLINK_GENERIC "$svc6" 'ipvsadm -a -t [fd00::10]:80 -r [fd00:244::2]:8080 -m'
  cap $ipvs/set_dest $NETLINK_GENERIC "$dest4" 'ipvsadm -e -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 0'
  cap $ipvs/del_dest $NETLINK_GENERIC "$dest4" 'ipvsadm -d -t 10.96.0.10:80 -r 10.244.1.2:8080'
  cap $ipvs/list_services_and_dests $NETLINK_GENERIC "$many" 'ipvsadm -Ln'
  cap $ipvs/get_service_single $NETLINK_GENERIC "$dest4" 'ipvsadm -Ln -t 10.96.0.10:80'
  cap $ipvs/set_config $NETLINK_GENERIC '' 'ipvsadm --set 900 120 300'
  cap $ipvs/get_config $NETLINK_GENERIC 'ipvsadm --set 900 120 300' 'ipvsadm -Ln --timeout'
  cap $ipvs/zero $NETLINK_GENERIC "$dest4" 'ipvsadm -Z'
  cap $ipvs/flush $NETLINK_GENERIC "$many" 'ipvsadm -C'
  cap $ipvs/get_info $NETLINK_GENERIC '' 'ipvsadm -v'
  cap $ipvs/new_service_exists $NETLINK_GENERIC "$svc4" "!$svc4"

  # ipset, nfnetlink subsystem IPSET.
  local cip='ipset create KUBE-CLUSTER-IP hash:ip,port'
  local cipc="$cip comment"
  local two_sets="$cipc
    ipset add KUBE-CLUSTER-IP 10.96.0.10,tcp:80 comment \"default/kubernetes:https\"
    ipset add KUBE-CLUSTER-IP 10.96.0.10,udp:53 comment \"kube-system/kube-dns:dns\"
    ipset create KUBE-LOOP-BACK hash:ip,port,ip
    ipset add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2
    ipset add KUBE-LOOP-BACK 10.244.1.3,tcp:8080,10.244.1.3"
  cap $ipset/version $NETLINK_NETFILTER '' 'ipset version'
  cap $ipset/protocol_and_type $NETLINK_NETFILTER "$cip" "ipset -exist create KUBE-CLUSTER-IP hash:ip,port"
  cap $ipset/create_hash_ip_port $NETLINK_NETFILTER '' "$cip"
  cap $ipset/create_hash_ip_port_comment $NETLINK_NETFILTER '' "$cipc"
  cap $ipset/create_hash_ip_port_ip $NETLINK_NETFILTER '' 'ipset create KUBE-LOOP-BACK hash:ip,port,ip'
  cap $ipset/create_hash_ip_port_net $NETLINK_NETFILTER '' 'ipset create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net'
  cap $ipset/create_bitmap_port $NETLINK_NETFILTER '' 'ipset create KUBE-NODE-PORT-TCP bitmap:port range 0-65535'
  cap $ipset/create_hash_ip_port_v6 $NETLINK_NETFILTER '' 'ipset create KUBE-6-CLUSTER-IP hash:ip,port family inet6'
  cap $ipset/create_hash_ip $NETLINK_NETFILTER '' 'ipset create KUBE-IPVS-IPS hash:ip'
  cap $ipset/create_exists $NETLINK_NETFILTER "$cip" "!$cip"
  cap $ipset/add_ip_port $NETLINK_NETFILTER "$cip" 'ipset add KUBE-CLUSTER-IP 10.96.0.10,tcp:80'
  cap $ipset/add_ip_port_comment $NETLINK_NETFILTER "$cipc" 'ipset add KUBE-CLUSTER-IP 10.96.0.10,tcp:80 comment "default/kubernetes:https"'
  cap $ipset/add_ip_port_ip $NETLINK_NETFILTER 'ipset create KUBE-LOOP-BACK hash:ip,port,ip' 'ipset add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2'
  cap $ipset/add_ip_port_net $NETLINK_NETFILTER 'ipset create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net' 'ipset add KUBE-LOAD-BALANCER-SOURCE-CIDR 203.0.113.10,tcp:80,198.51.100.0/24'
  cap $ipset/add_bitmap_port $NETLINK_NETFILTER 'ipset create KUBE-NODE-PORT-TCP bitmap:port range 0-65535' 'ipset add KUBE-NODE-PORT-TCP 30080'
  cap $ipset/add_v6 $NETLINK_NETFILTER 'ipset create KUBE-6-CLUSTER-IP hash:ip,port family inet6' 'ipset add KUBE-6-CLUSTER-IP fd00::10,udp:53'
  cap $ipset/restore_batch $NETLINK_NETFILTER '' 'ipset restore' \
    'create KUBE-CLUSTER-IP hash:ip,port comment
add KUBE-CLUSTER-IP 10.96.0.1,tcp:443 comment "default/kubernetes:https"
add KUBE-CLUSTER-IP 10.96.0.10,udp:53 comment "kube-system/kube-dns:dns"
add KUBE-CLUSTER-IP 10.96.0.10,tcp:53 comment "kube-system/kube-dns:dns-tcp"
add KUBE-CLUSTER-IP 10.96.0.10,tcp:9153 comment "kube-system/kube-dns:metrics"
add KUBE-CLUSTER-IP 10.96.0.20,sctp:9000 comment "default/sctp:sctp"'
  cap $ipset/del $NETLINK_NETFILTER "$two_sets" 'ipset del KUBE-CLUSTER-IP 10.96.0.10,tcp:80'
  cap $ipset/test $NETLINK_NETFILTER "$two_sets" 'ipset test KUBE-CLUSTER-IP 10.96.0.10,tcp:80'
  cap $ipset/test_absent $NETLINK_NETFILTER "$two_sets" '!ipset test KUBE-CLUSTER-IP 10.96.0.11,tcp:80'
  cap $ipset/list $NETLINK_NETFILTER "$two_sets" 'ipset list'
  cap $ipset/save $NETLINK_NETFILTER "$two_sets" 'ipset save'
  cap $ipset/list_one $NETLINK_NETFILTER "$two_sets" 'ipset list KUBE-CLUSTER-IP'
  # The HEADER command itself (a set's type and family) is what libipset
  # sends before every add/del/test: see the add_*, del and test fixtures.
  cap $ipset/header $NETLINK_NETFILTER "$two_sets" 'ipset -n list KUBE-CLUSTER-IP'
  cap $ipset/list_terse $NETLINK_NETFILTER "$two_sets" 'ipset list -t KUBE-CLUSTER-IP'
  cap $ipset/flush $NETLINK_NETFILTER "$two_sets" 'ipset flush KUBE-CLUSTER-IP'
  cap $ipset/rename $NETLINK_NETFILTER "$two_sets" 'ipset rename KUBE-CLUSTER-IP KUBE-CLUSTER-IP-OLD'
  cap $ipset/swap $NETLINK_NETFILTER "$two_sets
    ipset create KUBE-CLUSTER-IP-NEW hash:ip,port comment" 'ipset swap KUBE-CLUSTER-IP KUBE-CLUSTER-IP-NEW'
  cap $ipset/destroy $NETLINK_NETFILTER "$cip" 'ipset destroy KUBE-CLUSTER-IP'
  cap $ipset/destroy_in_use $NETLINK_NETFILTER "$cip
    iptables-nft -t nat -A POSTROUTING -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT" '!ipset destroy KUBE-CLUSTER-IP'
  cap $ipset/create_hash_ip_port_sizes $NETLINK_NETFILTER '' "$cip family inet hashsize 2048 maxelem 1000 comment"
  cap $ipset/add_exists $NETLINK_NETFILTER "$cip
    ipset add KUBE-CLUSTER-IP 10.96.0.10,tcp:80" '!ipset add KUBE-CLUSTER-IP 10.96.0.10,tcp:80'
  # Restore into a set the tool did not create: it asks HEADER per line.
  cap $ipset/restore_existing $NETLINK_NETFILTER "$cip" 'ipset restore' \
    'add KUBE-CLUSTER-IP 10.0.0.1,tcp:1
add KUBE-CLUSTER-IP 10.0.0.2,udp:2
add KUBE-CLUSTER-IP 10.0.0.3,sctp:3'
  # Line 3 is already in the set: the kernel's error echo names LINENO 3.
  cap $ipset/restore_error $NETLINK_NETFILTER "$cip
    ipset add KUBE-CLUSTER-IP 10.96.0.10,tcp:80" '!ipset restore' \
    'add KUBE-CLUSTER-IP 10.0.0.1,tcp:1
add KUBE-CLUSTER-IP 10.0.0.2,tcp:2
add KUBE-CLUSTER-IP 10.96.0.10,tcp:80
add KUBE-CLUSTER-IP 10.0.0.4,tcp:4'
  # 300 members: more than one page of restore and more than one LIST
  # message of dump.
  local big_adds i
  big_adds="$(for ((i = 0; i < 300; i++)); do
    printf 'add big 10.0.%d.%d,tcp:%d\n' $((i / 250)) $((i % 250 + 1)) $((1000 + i))
  done)"
  cap $ipset/restore_big $NETLINK_NETFILTER 'ipset create big hash:ip,port' 'ipset restore' "$big_adds"
  cap $ipset/list_big $NETLINK_NETFILTER "ipset create big hash:ip,port
    ipset restore <<'EOF'
$big_adds
EOF" 'ipset list big'
  cap $ipset/list_all_types $NETLINK_NETFILTER "$two_sets
    ipset create KUBE-NODE-PORT-TCP bitmap:port range 0-65535
    ipset add KUBE-NODE-PORT-TCP 30080
    ipset create KUBE-6-CLUSTER-IP hash:ip,port family inet6
    ipset add KUBE-6-CLUSTER-IP fd00::10,udp:53
    ipset create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net hashsize 2048 maxelem 1000
    ipset add KUBE-LOAD-BALANCER-SOURCE-CIDR 203.0.113.10,tcp:80,198.51.100.0/24" 'ipset list'

  # nf_tables, nfnetlink subsystem NFTABLES (and iptables-nft's xt compat).
  local table='nft add table ip kube-ipvs'
  local chains="$table
    nft 'add chain ip kube-ipvs nat-prerouting { type nat hook prerouting priority dstnat; policy accept; }'
    nft 'add chain ip kube-ipvs nat-postrouting { type nat hook postrouting priority srcnat; policy accept; }'
    nft 'add chain ip kube-ipvs filter-input { type filter hook input priority filter; policy accept; }'
    nft 'add chain ip kube-ipvs filter-forward { type filter hook forward priority filter; policy accept; }'
    nft add chain ip kube-ipvs mark-for-masquerade"
  local rules="$chains
    nft add rule ip kube-ipvs mark-for-masquerade meta mark set meta mark or 0x4000
    nft add rule ip kube-ipvs nat-prerouting ip saddr != 10.244.0.0/16 jump mark-for-masquerade
    nft add rule ip kube-ipvs nat-postrouting meta mark and 0x4000 == 0x4000 masquerade fully-random
    nft add rule ip kube-ipvs filter-forward ct state established,related accept
    nft add rule ip kube-ipvs filter-input fib daddr type local meta l4proto tcp counter return
    nft add rule ip kube-ipvs filter-input ct state new reject"
  cap $nft/add_table $NETLINK_NETFILTER '' "$table"
  cap $nft/add_table_ip6 $NETLINK_NETFILTER '' 'nft add table ip6 kube-ipvs'
  cap $nft/add_base_chain $NETLINK_NETFILTER "$table" "nft 'add chain ip kube-ipvs nat-postrouting { type nat hook postrouting priority srcnat; policy accept; }'"
  cap $nft/add_regular_chain $NETLINK_NETFILTER "$table" 'nft add chain ip kube-ipvs mark-for-masquerade'
  cap $nft/rule_mark_masq $NETLINK_NETFILTER "$chains" 'nft add rule ip kube-ipvs mark-for-masquerade meta mark set meta mark or 0x4000'
  cap $nft/rule_saddr_not_cidr_jump $NETLINK_NETFILTER "$chains" 'nft add rule ip kube-ipvs nat-prerouting ip saddr != 10.244.0.0/16 jump mark-for-masquerade'
  cap $nft/rule_masq_fully_random $NETLINK_NETFILTER "$chains" 'nft add rule ip kube-ipvs nat-postrouting meta mark and 0x4000 == 0x4000 masquerade fully-random'
  cap $nft/rule_ct_state_accept $NETLINK_NETFILTER "$chains" 'nft add rule ip kube-ipvs filter-forward ct state established,related accept'
  cap $nft/rule_fib_local_l4proto $NETLINK_NETFILTER "$chains" 'nft add rule ip kube-ipvs filter-input fib daddr type local meta l4proto tcp counter return'
  cap $nft/rule_reject_drop $NETLINK_NETFILTER "$chains" "nft 'add rule ip kube-ipvs filter-input ct state new reject; add rule ip kube-ipvs filter-input ct state new drop'"
  cap $nft/rule_xt_set_match $NETLINK_NETFILTER 'ipset create KUBE-LOOP-BACK hash:ip,port,ip
    iptables-nft -t nat -N KUBE-POSTROUTING' 'iptables-nft -t nat -A KUBE-POSTROUTING -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE'
  cap $nft/list_table $NETLINK_NETFILTER "$rules" 'nft list table ip kube-ipvs'
  cap $nft/delete_table $NETLINK_NETFILTER "$rules" 'nft delete table ip kube-ipvs'
  cap $nft/add_table_exists_error $NETLINK_NETFILTER "$table" "!nft create table ip kube-ipvs"

  # rtnetlink and conntrack (nfnetlink subsystem CTNETLINK).
  local link='ip link add kube-ipvs0 type dummy'
  local addrs="$link
    ip addr add 10.96.0.10/32 dev kube-ipvs0
    ip addr add 10.96.0.11/32 dev kube-ipvs0
    ip addr add fd00::10/128 dev kube-ipvs0"
  # Conntrack hooks are registered per namespace only once a rule needs them;
  # the datagram to a closed port leaves one unreplied UDP entry.
  local udp_flow="nft add table ip conntrack-probe
    nft 'add chain ip conntrack-probe out { type filter hook output priority filter; }'
    nft add rule ip conntrack-probe out ct state new counter
    echo ping | socat -u - UDP-SENDTO:127.0.0.1:9999
    conntrack -L -p udp 2>/dev/null | grep -q dport=9999"
  cap $net/link_add_dummy $NETLINK_ROUTE '' "$link"
  cap $net/link_show $NETLINK_ROUTE "$link" 'ip link show kube-ipvs0'
  cap $net/link_del $NETLINK_ROUTE "$link" 'ip link del kube-ipvs0'
  cap $net/addr_add_v4 $NETLINK_ROUTE "$link" 'ip addr add 10.96.0.10/32 dev kube-ipvs0'
  cap $net/addr_add_v6 $NETLINK_ROUTE "$link" 'ip addr add fd00::10/128 dev kube-ipvs0'
  cap $net/addr_del_v4 $NETLINK_ROUTE "$addrs" 'ip addr del 10.96.0.10/32 dev kube-ipvs0'
  cap $net/addr_show $NETLINK_ROUTE "$addrs" 'ip addr show dev kube-ipvs0'
  cap $net/conntrack_list_udp $NETLINK_NETFILTER "$udp_flow" 'conntrack -L -p udp'
  cap $net/conntrack_delete $NETLINK_NETFILTER "$udp_flow" 'conntrack -D -p udp --orig-dst 127.0.0.1 --dport 9999'
}

# ---------------------------------------------------------------------------
# In the VM.
# ---------------------------------------------------------------------------
capture_count=0
unexpected=0

# cap <fixture> <protocol> <setup> <command> [stdin]: records one capture as
# <out>/<n>.pcap plus <n>.fixture, .protocol, .command, .stdin, .window, .status.
cap() {
  local fixture="$1" protocol="$2" setup="$3" command="$4" stdin="${5-}"
  if ((${#only[@]})) && [[ " ${only[*]} " != *" $(basename "$fixture") "* ]]; then
    return
  fi
  local n=$((capture_count += 1))
  local ns="kipvs-cap-$n" expect_failure=0
  if [[ "$command" == '!'* ]]; then
    expect_failure=1
    command="${command#!}"
  fi
  echo "capture: [$n] $fixture: $command"
  printf '%s\n' "$fixture" > "$out/$n.fixture"
  printf '%s\n' "$protocol" > "$out/$n.protocol"
  printf '%s\n' "$command" > "$out/$n.command"
  [[ -z "$stdin" ]] || printf '%s\n' "$stdin" > "$out/$n.stdin"

  ip netns add "$ns"
  ip -n "$ns" link set lo up
  if [[ -n "$setup" ]] && ! ip netns exec "$ns" bash -euc "$setup" > "$out/$n.setup.log" 2>&1; then
    echo "capture: [$n] set-up failed:"; cat "$out/$n.setup.log"
    unexpected=$((unexpected + 1))
    ip netns del "$ns"
    return
  fi
  ip -n "$ns" link add nlmon0 type nlmon
  ip -n "$ns" link set nlmon0 up
  # -Z root: Debian's tcpdump otherwise drops to the tcpdump user before
  # opening its output file. --immediate-mode: without it libpcap collects
  # packets in TPACKET_V3 blocks handed over only when full or after a
  # timeout, and whatever sits in an unfinished block when tcpdump is
  # stopped is lost.
  local pcap="/tmp/kipvs-cap-$n.pcap"
  ip netns exec "$ns" tcpdump -Z root --immediate-mode -i nlmon0 -U -w "$pcap" 2> "$out/$n.tcpdump.log" &
  local tcpdump=$!
  # Only run the command once tcpdump is capturing (it says so on stderr).
  local waited=0
  until grep -q 'listening on' "$out/$n.tcpdump.log" 2>/dev/null; do
    sleep 0.1
    if ((++waited > 300)); then
      echo "capture: [$n] tcpdump did not start:"; cat "$out/$n.tcpdump.log"
      break
    fi
  done
  sleep 0.2

  local start end status
  start="$(date +%s.%N)"
  if [[ -n "$stdin" ]]; then
    printf '%s\n' "$stdin" | ip netns exec "$ns" bash -c "$command" > "$out/$n.output" 2>&1
  else
    ip netns exec "$ns" bash -c "$command" < /dev/null > "$out/$n.output" 2>&1
  fi
  status=$?
  end="$(date +%s.%N)"
  sleep 0.5
  kill -INT "$tcpdump"
  wait "$tcpdump"
  cp "$pcap" "$out/$n.pcap"
  rm -f "$pcap"
  printf '%s %s\n' "$start" "$end" > "$out/$n.window"
  echo "$status" > "$out/$n.status"
  if (( (status != 0) != expect_failure )); then
    echo "capture: [$n] unexpected exit status $status:"; cat "$out/$n.output"
    unexpected=$((unexpected + 1))
  fi
  ip netns del "$ns"
}

in_vm() {
  out="$1"
  shift
  only=("$@")
  uname -r > "$out/kernel"
  captures
  echo "capture: $capture_count captures, $unexpected unexpected results"
  ((unexpected == 0))
}

if [[ "${1-}" == --in-vm ]]; then
  shift
  in_vm "$@"
  exit
fi

# ---------------------------------------------------------------------------
# On the host.
# ---------------------------------------------------------------------------
out="$repo/target/vm-results/capture"
start=$SECONDS
status=0
KIPVS_VM_LABEL=capture "$repo/hack/vm/run.sh" "$out" "$repo/hack/capture-fixtures.sh" --in-vm "$out" "$@" || status=$?
echo "capture: VM boot + captures took $((SECONDS - start)) s"
if ((status == 3)); then
  exit 3
fi
/usr/bin/python3 "$repo/hack/pcap_to_fixtures.py" "$out" "$repo" || status=1
exit "$status"
