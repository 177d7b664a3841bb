#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from the golden
fixtures (crates/*/tests/fixtures/*.txt, captured from the real tools on the
real kernel) and the example manifests. Generated rather than committed: the
seeds follow every `make fixtures` recapture and add no binary files to git.

A fixture holds each message without its nlmsghdr (see crates/fixtures); a
seed is a datagram as the kernel sends it: the kernel's consecutive messages
of one exchange, each with a header whose sequence number is one the fuzz
entry points wait on (kipvs_netlink::fuzzing: 1 = acknowledged request,
2 = dump)."""

import hashlib
import pathlib
import re
import struct
import sys

SEQ_ACK, SEQ_DUMP = 1, 2
NLM_F_MULTI = 0x2
NLMSG_ERROR, NLMSG_DONE = 2, 3

repo = pathlib.Path(__file__).resolve().parent.parent
out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else repo / "fuzz" / "seeds"


def parse(path):
    """(direction, type, flags, payload) of every message of a fixture."""
    messages = []
    for line in path.read_text().splitlines():
        m = re.match(r"([<>]) type=0x([0-9a-f]+) flags=0x([0-9a-f]+)", line)
        if m:
            messages.append([m.group(1), int(m.group(2), 16), int(m.group(3), 16), bytearray()])
        elif messages and re.fullmatch(r"[0-9a-f]{2}( [0-9a-f]{2})*", line.strip()):
            messages[-1][3] += bytes.fromhex(line)
    return messages


def message(mtype, flags, seq, payload):
    body = bytes(payload)
    data = struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, 4242) + body
    return data + b"\0" * (-len(data) % 4)


def seq_of(mtype, flags):
    return SEQ_DUMP if flags & NLM_F_MULTI or mtype == NLMSG_DONE else SEQ_ACK


def write(target, data):
    directory = out / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def replies(path):
    """Each run of kernel messages (one reply to one request) as a datagram,
    plus every single kernel message on its own."""
    runs, current = [], []
    for direction, mtype, flags, payload in parse(path):
        if direction == "<":
            current.append(message(mtype, flags, seq_of(mtype, flags), payload))
            yield current[-1]
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    for run in runs:
        yield b"".join(run)


def error_bodies(path):
    for direction, mtype, flags, payload in parse(path):
        if direction == "<" and mtype == NLMSG_ERROR:
            yield struct.pack("=H", flags) + bytes(payload)


targets = {
    "packet-ipvs": lambda name: "ipvs_reply",
    "packet-ipset": lambda name: "ipset_reply",
    "packet-nftables": lambda name: "nftables_reply",
    "netlink": lambda name: "conntrack_reply" if name.startswith("conntrack") else "route_message",
}

count = 0
for crate, target_of in targets.items():
    for path in sorted((repo / "crates" / crate / "tests" / "fixtures").glob("*.txt")):
        for datagram in replies(path):
            write(target_of(path.stem), datagram)
            write("datagram_split", datagram)
            count += 2
        for body in error_bodies(path):
            write("error_message", body)
            count += 1
for path in sorted((repo / "examples").glob("*.yaml")):
    write("manifest", path.read_bytes())
    count += 1
print(f"fuzz seeds: {count} written under {out}")
