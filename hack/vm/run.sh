#!/usr/bin/env bash
# Boots Debian's stock kernel once with virtme-ng and runs one command in it.
#
#   hack/vm/run.sh <results-dir> <guest-command> [args...]
#
# Why a VM: the host kernel has no IPVS and no dummy links and cannot load
# modules, so everything kernel-facing runs in a guest. TCG, not KVM: a KVM
# guest hangs at boot on the dev/CI machines. The guest shares the host's root
# filesystem read-only over 9p (so it sees the host's tools and target/), with
# writable overlays on /etc, /tmp, /var, /usr and a tmpfs /run;
# <results-dir> is the only guest directory whose writes reach the host.
#
# The command runs under hack/vm/guest-env.sh, which first writes
# <results-dir>/started, then loads modules and sets PATH. A missing marker
# after the VM exits means the guest never ran the command (QEMU 7.2 under TCG
# aborts in about 1 of 20 boots with `msix_table_mmio_write: Assertion`): that
# boot is retried once, then reported as an infrastructure failure with exit
# status 3, distinct from the command's own failures. A boot can also hang
# silently (a kernel panic before the console is up is silent), so a guest
# that has not written the marker within KIPVS_VM_BOOT_TIMEOUT seconds is
# stopped and counts as a failed boot; the retry boots with the kernel's
# console messages shown (vng --verbose), so a second hang says where it
# stopped.
#
# Environment:
#   KIPVS_VM_KVM=1        use KVM (a KVM guest hangs at boot on the dev/CI machines, so TCG is the default)
#   KIPVS_VM_KERNEL=path  kernel image (default: newest /boot/vmlinuz-*-amd64)
#   KIPVS_VM_MEMORY=2G    guest memory
#   KIPVS_VM_TIMEOUT=3000 seconds before a hung VM is killed
#   KIPVS_VM_BOOT_TIMEOUT=600 seconds the guest has to start the command (a boot takes 40-90 s under TCG)
#   KIPVS_VM_LABEL=vm     prefix of this script's own messages (e2e, capture, ...)
set -uo pipefail

readonly infra_failure_status=3

if (($# < 2)); then
  echo "usage: $0 <results-dir> <guest-command> [args...]" >&2
  exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
results="$1"
shift
label="${KIPVS_VM_LABEL:-vm}"

mkdir -p "$results"
results="$(cd "$results" && pwd)"
# Each boot empties it: refuse anything that is not a dedicated directory.
if [[ "$results" == / || "$results" == "$repo" || "$results" == "$HOME" ]]; then
  echo "$label: refusing to use $results as the results directory" >&2
  exit 2
fi
# virtme-ng's vng runs virtme-run from PATH.
export PATH="$repo/.venv/bin:$PATH"
if ! command -v vng >/dev/null; then
  echo "$label: vng not found: run hack/setup.sh (make setup) first" >&2
  exit "$infra_failure_status"
fi

kernel="${KIPVS_VM_KERNEL:-}"
if [[ -z "$kernel" ]]; then
  # The -cloud-amd64 flavour has no 9p, so it cannot share the host root.
  kernel="$(ls /boot/vmlinuz-*-amd64 2>/dev/null | grep -v -- '-cloud-' | sort -V | tail -n 1)"
fi
if [[ ! -r "$kernel" ]]; then
  echo "$label: no readable kernel image (${kernel:-none}): install linux-image-amd64 (make setup)" >&2
  exit "$infra_failure_status"
fi

vng_args=(-r "$kernel" --force-9p -m "${KIPVS_VM_MEMORY:-2G}" --rwdir "$results" --cwd "$repo")
if [[ "${KIPVS_VM_KVM:-0}" != 1 ]]; then
  vng_args+=(--disable-kvm)
fi

# vng runs --exec through the guest's shell: quote every word.
guest_command="$(printf '%q ' "$repo/hack/vm/guest-env.sh" "$results" "$@")"
# virtme-ng hands the command to the guest base64-encoded on the kernel
# command line (2048 bytes on x86, with virtme's own options): past that
# the kernel panics at its first instruction and the boot hangs silently.
# Pass long argument lists in a file instead.
encoded_length=$(printf '%s' "$guest_command" | base64 -w0 | wc -c)
if ((encoded_length > 1200)); then
  echo "$label: the guest command is too long for the kernel command line ($encoded_length bytes encoded, at most 1200): pass its arguments in a file" >&2
  exit 2
fi

boot() {
  local attempt="$1"
  shift
  # Keep the results of a previous run out of this one's verdict.
  find "$results" -mindepth 1 -delete
  local args=("${vng_args[@]}")
  ((attempt == 1)) || args+=(--verbose)
  echo "$label: booting $(basename "$kernel") ($( [[ "${KIPVS_VM_KVM:-0}" == 1 ]] && echo KVM || echo TCG)) for: $*"
  local start=$SECONDS boot_timeout="${KIPVS_VM_BOOT_TIMEOUT:-600}"
  # One pipe for both streams: vng opens the guest's stdout and stderr as
  # separate handles, and redirecting them straight to a file garbles the
  # output.
  timeout --kill-after=30 "${KIPVS_VM_TIMEOUT:-3000}" \
    vng "${args[@]}" --exec "$guest_command" </dev/null > >(cat) 2>&1 &
  local vm=$!
  while kill -0 "$vm" 2>/dev/null; do
    if [[ ! -e "$results/started" ]] && ((SECONDS - start >= boot_timeout)); then
      echo "$label: the guest has not started the command after $boot_timeout s; stopping this boot"
      # timeout passes the signal on to vng, which is QEMU by then.
      kill -TERM "$vm" 2>/dev/null
      break
    fi
    sleep 2
  done
  wait "$vm"
  status=$?
  echo "$label: VM exited with status $status after $((SECONDS - start)) s"
}

for attempt in 1 2; do
  boot "$attempt" "$@"
  if [[ -e "$results/started" ]]; then
    exit "$status"
  fi
  if ((attempt == 1)); then
    echo "$label: the guest never started the command (QEMU abort or boot failure); retrying the boot once"
  fi
done
echo "$label: infrastructure failure (VM did not start the suite)"
exit "$infra_failure_status"
