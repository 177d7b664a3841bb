//! Shared checks for the captured ipset conversations: the VM fixtures
//! written by `hack/capture-fixtures.sh`.

use kipvs_fixtures::{Captured, Direction, Fixture};
use kipvs_packet_ipset::{DataAttr, IpsetAttr, IpsetMessage};
use netlink_packet_core::Emitable;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// Types below this are netlink control messages (`NLMSG_NOOP`,
/// `NLMSG_OVERRUN`, ...), never ipset's (`NFNL_SUBSYS_IPSET << 8 | cmd`).
const NLMSG_MIN_TYPE: u16 = 16;

/// Every ipset message of the fixture parsed, with its capture.
pub struct Parsed {
    pub requests: Vec<(Captured, IpsetMessage)>,
    pub replies: Vec<(Captured, IpsetMessage)>,
    /// `NLMSG_ERROR` payloads: (code, echoed request).
    pub errors: Vec<(i32, Vec<u8>)>,
}

fn assert_no_other(fixture: &str, message: &IpsetMessage) {
    for attr in &message.attrs {
        let data_blocks: Vec<&Vec<DataAttr>> = match attr {
            IpsetAttr::Other(nla) => panic!("{fixture}: untyped attribute {nla:?} in {message:?}"),
            IpsetAttr::Data(data) => vec![data],
            IpsetAttr::Adt(elements) => elements.iter().collect(),
            _ => vec![],
        };
        for data in data_blocks {
            for attr in data {
                if let DataAttr::Other(nla) = attr {
                    panic!("{fixture}: untyped DATA attribute {nla:?} in {message:?}");
                }
            }
        }
    }
}

/// Parses every message: ipset messages must parse without `Other` and
/// re-emit to the captured bytes; acks/errors and DONE are decoded too.
pub fn parse_all(fixture: &Fixture) -> Parsed {
    let mut parsed = Parsed {
        requests: vec![],
        replies: vec![],
        errors: vec![],
    };
    for captured in &fixture.messages {
        match captured.nlmsg_type {
            NLMSG_ERROR => {
                assert_eq!(captured.direction, Direction::FromKernel);
                let code = i32::from_ne_bytes(captured.payload[..4].try_into().unwrap());
                parsed.errors.push((code, captured.payload[4..].to_vec()));
            }
            NLMSG_DONE => assert_eq!(captured.direction, Direction::FromKernel),
            control if control < NLMSG_MIN_TYPE => {
                assert_eq!(
                    captured.direction,
                    Direction::FromKernel,
                    "{}: control message {control} sent by the tool",
                    fixture.name
                );
            }
            nlmsg_type => {
                let message =
                    IpsetMessage::parse(nlmsg_type, &captured.payload).unwrap_or_else(|e| {
                        panic!("{}: message {captured:?} does not parse: {e}", fixture.name)
                    });
                assert_no_other(&fixture.name, &message);
                let mut emitted = vec![0; message.buffer_len()];
                message.emit(&mut emitted);
                assert_same_bytes(&fixture.name, &emitted, &zero_padding(&captured.payload));
                match captured.direction {
                    Direction::ToKernel => parsed.requests.push((captured.clone(), message)),
                    Direction::FromKernel => parsed.replies.push((captured.clone(), message)),
                }
            }
        }
    }
    parsed
}

/// The requests must be exactly `expected`, byte for byte, with the flags
/// [`IpsetMessage::nlmsg_flags`] gives.
pub fn assert_requests(fixture: &Fixture, expected: &[IpsetMessage]) -> Parsed {
    let flagged: Vec<(IpsetMessage, u16)> = expected
        .iter()
        .map(|message| (message.clone(), message.nlmsg_flags()))
        .collect();
    assert_requests_flagged(fixture, &flagged)
}

/// [`assert_requests`] with explicit flags per request, for the tool's
/// options that change them (`-exist` drops `NLM_F_EXCL`).
pub fn assert_requests_flagged(fixture: &Fixture, expected: &[(IpsetMessage, u16)]) -> Parsed {
    let parsed = parse_all(fixture);
    let got: Vec<&IpsetMessage> = parsed.requests.iter().map(|(_, m)| m).collect();
    let want: Vec<&IpsetMessage> = expected.iter().map(|(m, _)| m).collect();
    assert_eq!(want, got, "{}: requests differ", fixture.name);
    for ((captured, _), (expected, flags)) in parsed.requests.iter().zip(expected) {
        assert_same_bytes(
            &fixture.name,
            &expected.to_bytes(),
            &zero_padding(&captured.payload),
        );
        assert_eq!(
            expected.nlmsg_type(),
            captured.nlmsg_type,
            "{}: type",
            fixture.name
        );
        assert_eq!(
            *flags, captured.nlmsg_flags,
            "{}: flags of {expected:?}",
            fixture.name
        );
    }
    parsed
}

/// The error codes of the fixture's `NLMSG_ERROR`s (0 for an ack).
pub fn error_codes(parsed: &Parsed) -> Vec<i32> {
    parsed.errors.iter().map(|(code, _)| *code).collect()
}

/// Byte comparison that reports the first difference instead of dumping
/// kilobytes.
pub fn assert_same_bytes(what: &str, emitted: &[u8], captured: &[u8]) {
    if emitted == captured {
        return;
    }
    let at = emitted
        .iter()
        .zip(captured)
        .position(|(a, b)| a != b)
        .unwrap_or(emitted.len().min(captured.len()));
    let window = |b: &[u8]| b[at.saturating_sub(8)..(at + 8).min(b.len())].to_vec();
    panic!(
        "{what}: bytes differ at offset {at} (emitted {} bytes, captured {}): emitted ..{:02x?}.. captured ..{:02x?}..",
        emitted.len(),
        captured.len(),
        window(emitted),
        window(captured)
    );
}

/// The payload with every attribute's alignment padding set to zero.
///
/// libipset reuses one page-sized buffer for the whole session without
/// clearing it, so the padding after a short attribute (PROTOCOL, a
/// 1-byte PROTO, ...) can hold stale bytes of an earlier message: seen in
/// the fixtures `restore_batch` and `restore_big`. Netlink ignores padding,
/// and an emitter writes zeros there; everything else is compared as is.
pub fn zero_padding(payload: &[u8]) -> Vec<u8> {
    let mut out = payload.to_vec();
    zero_attrs(&mut out[4..]);
    out
}

fn zero_attrs(buf: &mut [u8]) {
    let mut at = 0;
    while at + 4 <= buf.len() {
        let len = u16::from_ne_bytes([buf[at], buf[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([buf[at + 2], buf[at + 3]]);
        if len < 4 || at + len > buf.len() {
            return;
        }
        if kind & 0x8000 != 0 {
            zero_attrs(&mut buf[at + 4..at + len]);
        }
        let aligned = ((len + 3) & !3).min(buf.len() - at);
        for byte in &mut buf[at + len..at + aligned] {
            *byte = 0;
        }
        at += aligned;
    }
}
