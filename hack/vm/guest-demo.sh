#!/bin/sh
# Runs inside the VM for `make demo`: a node (network namespace "node") with
# two pods behind veths, kube-ipvs fed the example cluster in examples/, then
# what an operator would look at and real requests through the ClusterIPs.
# Exits 0 only when every request was answered.
set -u
repo="$1"
daemon="$repo/target/debug/kube-ipvs"

step() { printf '\n=== %s\n' "$*"; }
in_node() { ip netns exec node "$@"; }

step "a node with two pods (10.244.1.2 and 10.244.1.3)"
ip netns add node
in_node ip link set lo up
for i in 1 2; do
  ip netns add "pod$i"
  ip -n node link add "veth$i" type veth peer name eth0 netns "pod$i"
  in_node ip link set "veth$i" up
  in_node ip addr add 10.244.1.254/32 dev "veth$i"
  in_node ip route add "10.244.1.$((i + 1))/32" dev "veth$i"
  in_node sysctl -qw "net.ipv4.conf.veth$i.proxy_arp=1"
  ip -n "pod$i" link set lo up
  ip -n "pod$i" addr add "10.244.1.$((i + 1))/24" dev eth0
  ip -n "pod$i" link set eth0 up
  ip -n "pod$i" route add 10.244.1.254 dev eth0
  ip -n "pod$i" route add default via 10.244.1.254
  mkdir -p "/tmp/www$i" && echo "hello from pod$i" > "/tmp/www$i/index.html"
  ip netns exec "pod$i" busybox httpd -p 8080 -h "/tmp/www$i"
done
# pod2 also answers UDP on 5353 (the example's kube-dns backend).
ip netns exec pod2 socat UDP4-RECVFROM:5353,fork SYSTEM:'echo dns answer from pod2' &

step "kube-ipvs --manifests examples/ --node-name node-a --cluster-cidr 10.244.0.0/16"
ls "$repo/examples"
in_node "$daemon" --manifests "$repo/examples" --node-name node-a --cluster-cidr 10.244.0.0/16 \
  > /tmp/kube-ipvs.log 2>&1 &
for _ in $(seq 1 120); do
  in_node ip -o addr show kube-ipvs0 2>/dev/null | grep -q 10.96.0.53 && break
  sleep 0.5
done
sleep 1
cat /tmp/kube-ipvs.log

step "ipvsadm -Ln"
in_node ipvsadm -Ln
step "ip addr show kube-ipvs0"
in_node ip addr show kube-ipvs0
step "ipset list -t (headers)"
in_node ipset list -t | grep -E '^(Name|Number of entries)'
step "nft list table ip kube-ipvs"
in_node nft list table ip kube-ipvs

failed=0
ask() {
  label="$1"; shift
  if answer="$("$@" 2>&1)" && [ -n "$answer" ]; then
    printf '%-42s -> %s\n' "$label" "$answer"
  else
    printf '%-42s -> FAILED %s\n' "$label" "$answer"
    failed=$((failed + 1))
  fi
}
step "real traffic"
for n in 1 2 3 4; do
  ask "node -> http://10.96.0.10/ ($n)" in_node curl -s -m 5 http://10.96.0.10/
done
for n in 1 2; do
  ask "pod1 -> http://10.96.0.10/ ($n)" ip netns exec pod1 curl -s -m 5 http://10.96.0.10/
done
ask "node -> udp 10.96.0.53:53" in_node sh -c 'echo query | socat -T 5 - UDP4:10.96.0.53:53'
ask "pod1 -> udp 10.96.0.53:53" ip netns exec pod1 sh -c 'echo query | socat -T 5 - UDP4:10.96.0.53:53'

step "result"
if [ "$failed" -eq 0 ]; then
  echo "demo: every request answered through the ClusterIPs"
else
  echo "demo: $failed request(s) failed"
fi
[ "$failed" -eq 0 ]
