#!/usr/bin/env python3
"""Turns the nlmon captures of hack/capture-fixtures.sh into fixture files.

    pcap_to_fixtures.py <capture-dir> <repo>

For each capture <n> the capture directory holds <n>.pcap and the metadata
files <n>.fixture (path of the fixture, without .txt), .protocol, .command,
.window ("start end", seconds since the epoch), .status and maybe .stdin; plus
one `kernel` file. The output format is the one crates/fixtures/src/lib.rs
reads.

A pcap of an nlmon device has link type 253 (LINKTYPE_NETLINK): libpcap
captures it in cooked mode, so each packet starts with a 16-byte Linux
"cooked" header (packet type, ARPHRD_NETLINK, address length, 8 address bytes,
protocol; big-endian) whose protocol field is the netlink protocol of the
socket; then come one or more netlink messages as one skb carried them (a
batch from nft, several parts of a dump), each padded to 4 bytes. The netlink
headers themselves are in host byte order (little-endian here).
"""

import os
import struct
import sys

LINKTYPE_NETLINK = 253
ARPHRD_NETLINK = 824
COOKED_HEADER_LEN = 16
NLMSG_HDRLEN = 16
NLM_F_REQUEST = 0x1


def read_pcap(path):
    """Yields (timestamp, data) for each packet of a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: no pcap header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a pcap file (magic {magic.hex()})")
    nanoseconds = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype != LINKTYPE_NETLINK:
        raise ValueError(f"{path}: link type {linktype}, expected {LINKTYPE_NETLINK}")
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, incl_len, orig_len = struct.unpack_from(endian + "IIII", data, offset)
        offset += 16
        if incl_len < orig_len:
            raise ValueError(f"{path}: packet truncated to {incl_len} of {orig_len} bytes")
        packet = data[offset : offset + incl_len]
        offset += incl_len
        yield sec + frac / (1e9 if nanoseconds else 1e6), packet


def netlink_messages(packet):
    """Yields (protocol, nlmsg_type, nlmsg_flags, payload) for one nlmon packet."""
    if len(packet) < COOKED_HEADER_LEN:
        raise ValueError("packet shorter than the cooked header")
    _pkttype, hatype, _halen = struct.unpack_from(">HHH", packet, 0)
    protocol = struct.unpack_from(">H", packet, 14)[0]
    if hatype != ARPHRD_NETLINK:
        raise ValueError(f"cooked header hatype {hatype}, expected {ARPHRD_NETLINK}")
    offset = COOKED_HEADER_LEN
    while offset + NLMSG_HDRLEN <= len(packet):
        length, msg_type, flags, _seq, _pid = struct.unpack_from("<IHHII", packet, offset)
        if length == 0 and not any(packet[offset:]):
            # iproute2 sends its dump requests from a zeroed buffer larger
            # than the message (`ip addr show`): the tail is not a message.
            break
        if length < NLMSG_HDRLEN or offset + length > len(packet):
            raise ValueError(f"bad nlmsg_len {length} at offset {offset} of {len(packet)}")
        yield protocol, msg_type, flags, packet[offset + NLMSG_HDRLEN : offset + length]
        offset += (length + 3) & ~3


def read_text(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return f.read().rstrip("\n")


def render(command, stdin, kernel, protocol, status, messages):
    lines = [f"# command: {command}"]
    if stdin is not None:
        lines += [f"# stdin: {line}" for line in stdin.split("\n")]
    lines += [
        f"# kernel: {kernel}",
        f"# protocol: {protocol}",
        "# captured: hack/capture-fixtures.sh (nlmon)",
    ]
    if status != 0:
        lines.append(f"# exit status: {status}")
    for msg_type, flags, payload in messages:
        marker = ">" if flags & NLM_F_REQUEST else "<"
        lines.append(f"{marker} type=0x{msg_type:04x} flags=0x{flags:04x}")
        for i in range(0, len(payload), 16):
            lines.append(" ".join(f"{b:02x}" for b in payload[i : i + 16]))
    return "\n".join(lines) + "\n"


def main():
    capture_dir, repo = sys.argv[1], sys.argv[2]
    kernel = read_text(os.path.join(capture_dir, "kernel"), "unknown")
    numbers = sorted(
        int(name[: -len(".fixture")])
        for name in os.listdir(capture_dir)
        if name.endswith(".fixture")
    )
    problems = 0
    written = 0
    for n in numbers:
        base = os.path.join(capture_dir, str(n))
        fixture = read_text(base + ".fixture")
        if not os.path.exists(base + ".pcap"):
            print(f"pcap_to_fixtures: {fixture}: no capture (set-up failed?)")
            problems += 1
            continue
        protocol = int(read_text(base + ".protocol"))
        start, end = (float(x) for x in read_text(base + ".window").split())
        messages = []
        for timestamp, packet in read_pcap(base + ".pcap"):
            # Keep what the command exchanged: not tcpdump's start-up and
            # shutdown chatter, nor other netlink protocols.
            if not start <= timestamp <= end:
                continue
            for proto, msg_type, flags, payload in netlink_messages(packet):
                if proto == protocol:
                    messages.append((msg_type, flags, payload))
        if not messages:
            print(f"pcap_to_fixtures: {fixture}: the command sent no protocol {protocol} message; no fixture written")
            continue
        text = render(
            read_text(base + ".command"),
            read_text(base + ".stdin"),
            kernel,
            protocol,
            int(read_text(base + ".status", "0")),
            messages,
        )
        path = os.path.join(repo, fixture + ".txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        written += 1
        requests = sum(1 for _, flags, _ in messages if flags & NLM_F_REQUEST)
        print(f"pcap_to_fixtures: {fixture}.txt: {requests} requests, {len(messages) - requests} replies")
    print(f"pcap_to_fixtures: {written} fixtures written, {problems} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
