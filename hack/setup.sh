#!/usr/bin/env bash
# Installs what `make unit`, `make e2e` and `make fixtures` need on a Debian
# bookworm machine, as root. Idempotent: when everything is present it only
# checks and returns in a few seconds.
#
# - apt packages: QEMU and Debian's stock kernel for the VM (the host kernel has
#   no IPVS and no dummy links, see hack/vm/run.sh), the tools the tests and the
#   fixture capture spawn inside the guest, python3-venv for virtme-ng.
# - virtme-ng (pinned) in the repo's .venv/: boots that kernel over the host's
#   root filesystem, so the guest sees the host's tools and target/ directory.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
virtme_ng_version="1.42"

apt_packages=(
  # VM: the emulator, the stock kernel (the -cloud flavour has no 9p) and the
  # busybox virtme's init falls back to.
  qemu-system-x86 linux-image-amd64 busybox-static kmod
  # Tools the tests and the capture run in the guest.
  iproute2 ipvsadm ipset iptables nftables conntrack curl socat strace tcpdump
  # virtme-ng's virtualenv; python3 also writes the fuzz seeds.
  python3 python3-venv
  # libFuzzer (C++), built by the fuzz targets' libfuzzer-sys.
  g++
)

log() { echo "setup: $*"; }

missing=()
for pkg in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing apt packages (${missing[*]}) and not root: install them first" >&2
    exit 1
  fi
  log "installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "apt packages present"
fi

if ! ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1; then
  echo "setup: no /boot/vmlinuz-*-amd64 after installing linux-image-amd64" >&2
  exit 1
fi

# Debian's python3, not whatever python3 comes first on PATH (pyenv shims,
# ...): python3-venv above is what makes its venv module work.
if [[ -x "$venv/bin/vng" ]] && "$venv/bin/vng" --version 2>/dev/null | grep -q "$virtme_ng_version"; then
  log "virtme-ng $virtme_ng_version present in .venv"
else
  log "creating .venv with virtme-ng $virtme_ng_version"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q "virtme-ng==$virtme_ng_version"
  "$venv/bin/vng" --version
fi

log "done"
