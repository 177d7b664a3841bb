//! Golden tests against the conversations of the real `ipset` tool with the
//! Debian 6.1 kernel in the VM, recorded through `nlmon` by
//! `hack/capture-fixtures.sh` into `tests/fixtures/` (one file per command;
//! the script's `cap` lines name each fixture's set-up and command).
//!
//! For every fixture: all messages parse with no untyped attribute, every
//! ipset message re-emits to its exact bytes, the requests equal the
//! builders' output (bytes, type and flags), every ack/error answers the
//! request before it, and the replies say what the set-up created. The
//! 6.1 kernel knows older set revisions than the host's 6.18 (see the
//! `REV_*` constants), which the tool then uses in CREATE.

mod common;

use std::net::IpAddr;

use common::{assert_requests, assert_requests_flagged, error_codes, parse_all, Parsed};
use kipvs_fixtures::{Captured, Direction, Fixture};
use kipvs_packet_ipset::{
    adt_batch, constants::*, entry_for_lineno, error_lineno, ipset_error_name, merge_list_replies,
    CreateOptions, DataAttr, Entry, IpsetAttr, IpsetCmd, IpsetMessage, SetFamily, SetInfo, SetType,
    IPSET_BATCH_BUFSIZE, IPSET_ERR_BUSY, IPSET_ERR_EXIST,
};
// NLM_F_CAPPED on an NLMSG_ERROR: the ack echoes only the request's header.
use netlink_packet_core::{NLM_F_CAPPED, NLM_F_EXCL, NLM_F_MULTIPART};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `ip_set_create` (ip_set_core.c) answers a name clash with plain
/// `-EEXIST`, not `IPSET_ERR_EXIST`; the tool words it "set with the same
/// name already exists".
const EEXIST: i32 = 17;

// The newest revision the 6.1 kernel reports in its TYPE replies (fixtures
// `create_*`); `ipset` 7.17 knows newer ones, so it creates at these.
const REV_HASH_IP: u8 = 5;
const REV_HASH_IP_PORT: u8 = 6;
const REV_HASH_IP_PORT_IP: u8 = 6;
const REV_HASH_IP_PORT_NET: u8 = 8;
const REV_BITMAP_PORT: u8 = 3;

/// The hash defaults the kernel reports for a set created without
/// `hashsize`/`maxelem` (`IPSET_DEFAULT_HASHSIZE`, `IPSET_DEFAULT_MAXELEM`).
const DEFAULT_HASH_SIZE: u32 = 1024;
const DEFAULT_MAX_ELEM: u32 = 65536;

const CLUSTER_IP: &str = "KUBE-CLUSTER-IP";
const LOOP_BACK: &str = "KUBE-LOOP-BACK";

fn load(name: &str) -> Fixture {
    let fixture = Fixture::load(DIR, name);
    assert_eq!(fixture.protocol, 12, "{name}: NETLINK_NETFILTER");
    assert!(
        fixture.kernel.starts_with("6.1."),
        "{name}: {}",
        fixture.kernel
    );
    assert!(fixture.command.starts_with("ipset "), "{name}");
    fixture
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Every `NLMSG_ERROR` answers the request sent just before it: the echoed
/// `nlmsghdr` has its length, type and flags, and an uncapped echo (errors)
/// carries its payload byte for byte (see [`assert_echo`] for the one
/// field a batch error rewrites). Returns the requests answered.
fn assert_answers(fixture: &Fixture) -> Vec<IpsetMessage> {
    let mut last_request = None;
    let mut answered = Vec::new();
    for captured in &fixture.messages {
        match captured.direction {
            Direction::ToKernel => last_request = Some(captured),
            Direction::FromKernel if captured.nlmsg_type == NLMSG_ERROR => {
                let request = last_request
                    .unwrap_or_else(|| panic!("{}: error before any request", fixture.name));
                let echoed = &captured.payload[4..];
                let len = u32::from_ne_bytes(echoed[0..4].try_into().unwrap()) as usize;
                let nlmsg_type = u16::from_ne_bytes(echoed[4..6].try_into().unwrap());
                let nlmsg_flags = u16::from_ne_bytes(echoed[6..8].try_into().unwrap());
                assert_eq!(
                    (len, nlmsg_type, nlmsg_flags),
                    (
                        16 + request.payload.len(),
                        request.nlmsg_type,
                        request.nlmsg_flags
                    ),
                    "{}: echoed header",
                    fixture.name
                );
                if captured.nlmsg_flags & NLM_F_CAPPED != 0 {
                    assert_eq!(echoed.len(), 16, "{}: capped ack", fixture.name);
                } else {
                    assert_echo(&fixture.name, &echoed[16..], request);
                }
                answered.push(IpsetMessage::parse(nlmsg_type, &request.payload).unwrap());
            }
            Direction::FromKernel => {}
        }
    }
    answered
}

/// An uncapped error echoes the request byte for byte, except that for a
/// batch (command-level `LINENO` present) `call_ad` (ip_set_core.c)
/// overwrites that `LINENO` with the failing element's own: the value must
/// then be one of the request's element line numbers.
fn assert_echo(fixture: &str, echoed: &[u8], request: &Captured) {
    let (nlmsg_type, request) = (request.nlmsg_type, &request.payload[..]);
    assert_eq!(echoed.len(), request.len(), "{fixture}: echo length");
    let Some(at) = command_lineno_offset(request) else {
        assert_eq!(echoed, request, "{fixture}: echo");
        return;
    };
    assert_eq!(echoed[..at], request[..at], "{fixture}: echo before LINENO");
    assert_eq!(
        echoed[at + 4..],
        request[at + 4..],
        "{fixture}: echo after LINENO"
    );
    let lineno = u32::from_be_bytes(echoed[at..at + 4].try_into().unwrap());
    let element_linenos: Vec<u32> = IpsetMessage::parse(nlmsg_type, request)
        .unwrap()
        .attrs
        .iter()
        .filter_map(|attr| match attr {
            IpsetAttr::Adt(elements) => Some(elements),
            _ => None,
        })
        .flatten()
        .flatten()
        .filter_map(|attr| match attr {
            DataAttr::LineNo(lineno) => Some(*lineno),
            _ => None,
        })
        .collect();
    assert!(
        element_linenos.contains(&lineno),
        "{fixture}: echoed LINENO {lineno} names no element of {element_linenos:?}"
    );
}

/// Offset of the command-level `IPSET_ATTR_LINENO` value in an ipset
/// payload (after the 4-byte `nfgenmsg`), if the message has one.
fn command_lineno_offset(payload: &[u8]) -> Option<usize> {
    let mut at = 4;
    while at + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[at], payload[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([payload[at + 2], payload[at + 3]]);
        if len < 4 {
            return None;
        }
        if kind & 0x3fff == IPSET_ATTR_LINENO && len == 8 {
            return Some(at + 4);
        }
        at += (len + 3) & !3;
    }
    None
}

/// Every invocation starts with the handshake; the 6.1 kernel speaks
/// protocol 7 and accepts 6 and up.
fn assert_protocol_reply(parsed: &Parsed) {
    let (_, first) = &parsed.replies[0];
    assert_eq!(first.protocol_reply().unwrap(), (IPSET_PROTOCOL, 6));
}

/// The one reply of command `cmd`.
fn reply(parsed: &Parsed, cmd: IpsetCmd) -> &IpsetMessage {
    let replies: Vec<&IpsetMessage> = parsed
        .replies
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == cmd)
        .collect();
    assert_eq!(replies.len(), 1, "one {cmd} reply");
    replies[0]
}

/// The LIST messages of a dump, checked to be multipart and to end in
/// `NLMSG_DONE`.
fn dump(fixture: &Fixture, parsed: &Parsed) -> Vec<IpsetMessage> {
    let last = fixture.messages.last().unwrap();
    assert_eq!(
        (last.nlmsg_type, last.nlmsg_flags & NLM_F_MULTIPART),
        (NLMSG_DONE, NLM_F_MULTIPART),
        "{}: a dump ends with a multipart DONE",
        fixture.name
    );
    assert_eq!(
        last.payload,
        0i32.to_ne_bytes(),
        "{}: DONE status",
        fixture.name
    );
    parsed
        .replies
        .iter()
        .filter(|(_, m)| m.cmd == IpsetCmd::List)
        .map(|(captured, m)| {
            assert_ne!(
                captured.nlmsg_flags & NLM_F_MULTIPART,
                0,
                "{}",
                fixture.name
            );
            m.clone()
        })
        .collect()
}

/// `ipset create` = PROTOCOL, TYPE query, CREATE.
fn create_conversation(
    name: &str,
    set_type: &SetType,
    family: SetFamily,
    revision: u8,
    options: &CreateOptions,
) -> Vec<IpsetMessage> {
    vec![
        IpsetMessage::protocol(),
        // The tool asks TYPE with family inet even for an inet6 set.
        IpsetMessage::type_query(
            set_type,
            if set_type.has_family() {
                SetFamily::Inet
            } else {
                SetFamily::Unspec
            },
        ),
        IpsetMessage::create(name, set_type, family, revision, options),
    ]
}

/// Checks a plain `ipset create` fixture: requests, the kernel's revision
/// range in the TYPE reply (newest = what the tool created with, oldest 0),
/// and the ack.
fn check_create(
    fixture_name: &str,
    name: &str,
    set_type: SetType,
    family: SetFamily,
    revision: u8,
    options: CreateOptions,
) {
    let fixture = load(fixture_name);
    let parsed = assert_requests(
        &fixture,
        &create_conversation(name, &set_type, family, revision, &options),
    );
    assert_protocol_reply(&parsed);
    assert_eq!(
        reply(&parsed, IpsetCmd::Type).type_reply().unwrap(),
        (revision, 0)
    );
    assert_eq!(error_codes(&parsed), vec![0]);
    assert_eq!(assert_answers(&fixture).len(), 1);
}

/// Checks an `ipset add/del/test` fixture: PROTOCOL, HEADER (to learn how
/// to parse the element), then `last`; the HEADER reply names the set's
/// type, family and revision. Returns the parsed fixture.
fn check_adt(
    fixture_name: &str,
    set: (&str, &str, SetFamily, u8),
    last: IpsetMessage,
    flags: u16,
) -> Parsed {
    let fixture = load(fixture_name);
    let expected = [IpsetMessage::protocol(), IpsetMessage::header(set.0), last];
    let flagged: Vec<(IpsetMessage, u16)> = expected
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let f = if i == 2 { flags } else { m.nlmsg_flags() };
            (m, f)
        })
        .collect();
    let parsed = assert_requests_flagged(&fixture, &flagged);
    assert_protocol_reply(&parsed);
    assert_eq!(reply(&parsed, IpsetCmd::Header), &header_reply(set));
    assert_eq!(assert_answers(&fixture).len(), 1);
    parsed
}

/// The kernel's answer to HEADER: the set's type, family and revision.
fn header_reply(set: (&str, &str, SetFamily, u8)) -> IpsetMessage {
    let (name, type_name, family, revision) = set;
    IpsetMessage::new(
        IpsetCmd::Header,
        vec![
            IpsetAttr::Protocol(IPSET_PROTOCOL),
            IpsetAttr::SetName(name.into()),
            IpsetAttr::TypeName(type_name.into()),
            IpsetAttr::Family(family.into()),
            IpsetAttr::Revision(revision),
        ],
    )
}

/// `check_adt` for ADD/DEL/TEST sent with the flags the builders give.
fn check_adt_default(
    fixture_name: &str,
    set: (&str, &str, SetFamily, u8),
    last: IpsetMessage,
) -> Parsed {
    let flags = last.nlmsg_flags();
    check_adt(fixture_name, set, last, flags)
}

const CLUSTER_IP_SET: (&str, &str, SetFamily, u8) = (
    CLUSTER_IP,
    "hash:ip,port",
    SetFamily::Inet,
    REV_HASH_IP_PORT,
);

/// A command on a set name only (flush, rename, swap, destroy): PROTOCOL
/// then the command; returns the parsed fixture.
fn check_named(fixture_name: &str, command: IpsetMessage) -> Parsed {
    let fixture = load(fixture_name);
    let parsed = assert_requests(&fixture, &[IpsetMessage::protocol(), command.clone()]);
    assert_protocol_reply(&parsed);
    assert_eq!(assert_answers(&fixture), vec![command]);
    parsed
}

// ---------------------------------------------------------------------------
// Handshake and create.
// ---------------------------------------------------------------------------

#[test]
fn version() {
    let fixture = load("version");
    let parsed = assert_requests(&fixture, &[IpsetMessage::protocol()]);
    assert_eq!(parsed.replies.len(), 1);
    assert_protocol_reply(&parsed);
    assert!(parsed.errors.is_empty(), "PROTOCOL is sent without ACK");
}

#[test]
fn protocol_and_type() {
    // Set-up created the set; `-exist` drops NLM_F_EXCL from CREATE, so
    // the kernel acks the identical set instead of answering -EEXIST.
    let fixture = load("protocol_and_type");
    let mut expected: Vec<(IpsetMessage, u16)> = create_conversation(
        CLUSTER_IP,
        &SetType::HashIpPort,
        SetFamily::Inet,
        REV_HASH_IP_PORT,
        &CreateOptions::default(),
    )
    .into_iter()
    .map(|m| {
        let flags = m.nlmsg_flags();
        (m, flags)
    })
    .collect();
    let create_flags = &mut expected[2].1;
    *create_flags &= !NLM_F_EXCL;
    let parsed = assert_requests_flagged(&fixture, &expected);
    assert_protocol_reply(&parsed);
    assert_eq!(
        reply(&parsed, IpsetCmd::Type),
        &IpsetMessage::new(
            IpsetCmd::Type,
            vec![
                IpsetAttr::Protocol(IPSET_PROTOCOL),
                IpsetAttr::TypeName("hash:ip,port".into()),
                IpsetAttr::Family(NFPROTO_IPV4),
                IpsetAttr::Revision(REV_HASH_IP_PORT),
                // IPSET_ATTR_REVISION_MIN shares id 10 with PROTOCOL_MIN.
                IpsetAttr::ProtocolMin(0),
            ]
        )
    );
    assert_eq!(error_codes(&parsed), vec![0]);
    assert_answers(&fixture);
}

#[test]
fn create_hash_ip_port() {
    check_create(
        "create_hash_ip_port",
        CLUSTER_IP,
        SetType::HashIpPort,
        SetFamily::Inet,
        REV_HASH_IP_PORT,
        CreateOptions::default(),
    );
}

#[test]
fn create_hash_ip_port_comment() {
    check_create(
        "create_hash_ip_port_comment",
        CLUSTER_IP,
        SetType::HashIpPort,
        SetFamily::Inet,
        REV_HASH_IP_PORT,
        CreateOptions {
            comment: true,
            ..CreateOptions::default()
        },
    );
}

#[test]
fn create_hash_ip_port_ip() {
    check_create(
        "create_hash_ip_port_ip",
        LOOP_BACK,
        SetType::HashIpPortIp,
        SetFamily::Inet,
        REV_HASH_IP_PORT_IP,
        CreateOptions::default(),
    );
}

#[test]
fn create_hash_ip_port_net() {
    check_create(
        "create_hash_ip_port_net",
        "KUBE-LOAD-BALANCER-SOURCE-CIDR",
        SetType::HashIpPortNet,
        SetFamily::Inet,
        REV_HASH_IP_PORT_NET,
        CreateOptions::default(),
    );
}

#[test]
fn create_bitmap_port() {
    // bitmap:port has no family: TYPE and CREATE carry NFPROTO_UNSPEC.
    check_create(
        "create_bitmap_port",
        "KUBE-NODE-PORT-TCP",
        SetType::BitmapPort,
        SetFamily::Unspec,
        REV_BITMAP_PORT,
        CreateOptions {
            port_range: Some((0, 65535)),
            ..CreateOptions::default()
        },
    );
}

#[test]
fn create_hash_ip_port_v6() {
    check_create(
        "create_hash_ip_port_v6",
        "KUBE-6-CLUSTER-IP",
        SetType::HashIpPort,
        SetFamily::Inet6,
        REV_HASH_IP_PORT,
        CreateOptions::default(),
    );
}

#[test]
fn create_hash_ip() {
    check_create(
        "create_hash_ip",
        "KUBE-IPVS-IPS",
        SetType::HashIp,
        SetFamily::Inet,
        REV_HASH_IP,
        CreateOptions::default(),
    );
}

#[test]
fn create_hash_ip_port_sizes() {
    // hashsize and maxelem follow CADT_FLAGS in the CREATE's DATA.
    check_create(
        "create_hash_ip_port_sizes",
        CLUSTER_IP,
        SetType::HashIpPort,
        SetFamily::Inet,
        REV_HASH_IP_PORT,
        CreateOptions {
            hash_size: Some(2048),
            max_elem: Some(1000),
            comment: true,
            ..CreateOptions::default()
        },
    );
}

#[test]
fn create_exists() {
    let fixture = load("create_exists");
    let create = IpsetMessage::create(
        CLUSTER_IP,
        &SetType::HashIpPort,
        SetFamily::Inet,
        REV_HASH_IP_PORT,
        &CreateOptions::default(),
    );
    let parsed = assert_requests(
        &fixture,
        &create_conversation(
            CLUSTER_IP,
            &SetType::HashIpPort,
            SetFamily::Inet,
            REV_HASH_IP_PORT,
            &CreateOptions::default(),
        ),
    );
    assert_eq!(error_codes(&parsed), vec![-EEXIST]);
    assert_eq!(ipset_error_name(-EEXIST), None, "not an ipset-private code");
    // The error echoes the whole CREATE; a single command has no LINENO.
    assert_eq!(assert_answers(&fixture), vec![create]);
    assert_eq!(error_lineno(&parsed.errors[0].1), None);
}

// ---------------------------------------------------------------------------
// Elements.
// ---------------------------------------------------------------------------

#[test]
fn add_ip_port() {
    let entry = Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 80);
    let parsed = check_adt_default(
        "add_ip_port",
        CLUSTER_IP_SET,
        IpsetMessage::add(CLUSTER_IP, &entry),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn add_ip_port_comment() {
    let entry =
        Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 80).with_comment("default/kubernetes:https");
    let parsed = check_adt_default(
        "add_ip_port_comment",
        CLUSTER_IP_SET,
        IpsetMessage::add(CLUSTER_IP, &entry),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn add_ip_port_ip() {
    let entry = Entry::ip_port_ip(ip("10.244.1.2"), IPPROTO_TCP, 8080, ip("10.244.1.2"));
    let parsed = check_adt_default(
        "add_ip_port_ip",
        (
            LOOP_BACK,
            "hash:ip,port,ip",
            SetFamily::Inet,
            REV_HASH_IP_PORT_IP,
        ),
        IpsetMessage::add(LOOP_BACK, &entry),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn add_ip_port_net() {
    let name = "KUBE-LOAD-BALANCER-SOURCE-CIDR";
    let entry = Entry::ip_port_net(ip("203.0.113.10"), IPPROTO_TCP, 80, ip("198.51.100.0"), 24);
    let parsed = check_adt_default(
        "add_ip_port_net",
        (
            name,
            "hash:ip,port,net",
            SetFamily::Inet,
            REV_HASH_IP_PORT_NET,
        ),
        IpsetMessage::add(name, &entry),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn add_bitmap_port() {
    let name = "KUBE-NODE-PORT-TCP";
    let parsed = check_adt_default(
        "add_bitmap_port",
        (name, "bitmap:port", SetFamily::Unspec, REV_BITMAP_PORT),
        IpsetMessage::add(name, &Entry::port(30080)),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn add_v6() {
    let name = "KUBE-6-CLUSTER-IP";
    let entry = Entry::ip_port(ip("fd00::10"), IPPROTO_UDP, 53);
    let parsed = check_adt_default(
        "add_v6",
        (name, "hash:ip,port", SetFamily::Inet6, REV_HASH_IP_PORT),
        IpsetMessage::add(name, &entry),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn add_exists() {
    // Set-up added the same entry. Without `-exist` the ADD carries
    // NLM_F_EXCL, so the kernel answers IPSET_ERR_EXIST and echoes the
    // whole request; a single ADD has no command-level LINENO.
    let entry = Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 80);
    let parsed = check_adt_default(
        "add_exists",
        CLUSTER_IP_SET,
        IpsetMessage::add(CLUSTER_IP, &entry),
    );
    assert_eq!(error_codes(&parsed), vec![-IPSET_ERR_EXIST]);
    assert_eq!(ipset_error_name(-IPSET_ERR_EXIST), Some("IPSET_ERR_EXIST"));
    assert_eq!(error_lineno(&parsed.errors[0].1), None);
}

#[test]
fn del() {
    let entry = Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 80);
    let parsed = check_adt_default("del", CLUSTER_IP_SET, IpsetMessage::del(CLUSTER_IP, &entry));
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn test() {
    // Set-up added 10.96.0.10,tcp:80 (with a comment: TEST ignores it).
    let entry = Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 80);
    let parsed = check_adt_default(
        "test",
        CLUSTER_IP_SET,
        IpsetMessage::test(CLUSTER_IP, &entry),
    );
    assert_eq!(error_codes(&parsed), vec![0], "member: TEST acks");
}

#[test]
fn test_absent() {
    let entry = Entry::ip_port(ip("10.96.0.11"), IPPROTO_TCP, 80);
    let test = IpsetMessage::test(CLUSTER_IP, &entry);
    let parsed = check_adt_default("test_absent", CLUSTER_IP_SET, test.clone());
    assert_eq!(
        error_codes(&parsed),
        vec![-IPSET_ERR_EXIST],
        "non-member: IPSET_ERR_EXIST"
    );
    assert_eq!(ipset_error_name(-IPSET_ERR_EXIST), Some("IPSET_ERR_EXIST"));
    assert_eq!(
        error_lineno(&parsed.errors[0].1),
        None,
        "TEST has no LINENO"
    );
}

#[test]
fn restore_batch() {
    // Line 1 creates the set, so the tool knows its type without asking
    // HEADER; lines 2-6 go out as one ADD with one DATA per line, each with
    // its own LINENO, and the message's LINENO is its first line.
    let fixture = load("restore_batch");
    let entries = vec![
        Entry::ip_port(ip("10.96.0.1"), IPPROTO_TCP, 443).with_comment("default/kubernetes:https"),
        Entry::ip_port(ip("10.96.0.10"), IPPROTO_UDP, 53).with_comment("kube-system/kube-dns:dns"),
        Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 53)
            .with_comment("kube-system/kube-dns:dns-tcp"),
        Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 9153)
            .with_comment("kube-system/kube-dns:metrics"),
        Entry::ip_port(ip("10.96.0.20"), IPPROTO_SCTP, 9000).with_comment("default/sctp:sctp"),
    ];
    let batch = adt_batch(IpsetCmd::Add, CLUSTER_IP, &entries, 2).messages;
    assert_eq!(batch.len(), 1, "five lines fit one page");
    assert_eq!(batch[0].lineno(), Some(2));
    let mut expected = create_conversation(
        CLUSTER_IP,
        &SetType::HashIpPort,
        SetFamily::Inet,
        REV_HASH_IP_PORT,
        &CreateOptions {
            comment: true,
            ..CreateOptions::default()
        },
    );
    expected.extend(batch);
    let parsed = assert_requests(&fixture, &expected);
    assert_protocol_reply(&parsed);
    assert_eq!(
        reply(&parsed, IpsetCmd::Type).type_reply().unwrap(),
        (REV_HASH_IP_PORT, 0)
    );
    assert_eq!(error_codes(&parsed), vec![0, 0], "CREATE and ADD acked");
    let answered: Vec<IpsetCmd> = assert_answers(&fixture).iter().map(|m| m.cmd).collect();
    assert_eq!(answered, vec![IpsetCmd::Create, IpsetCmd::Add]);
}

/// `ipset restore` of `entries` as ADD lines into an existing set `name`:
/// PROTOCOL, one HEADER per line (the tool did not create the set, so it
/// asks its type before parsing each element), then the batch.
fn restore_into_existing(name: &str, entries: &[Entry]) -> Vec<IpsetMessage> {
    let mut expected = vec![IpsetMessage::protocol()];
    expected.extend(entries.iter().map(|_| IpsetMessage::header(name)));
    expected.extend(IpsetMessage::add_batch(name, entries).messages);
    expected
}

/// Every HEADER reply of a restore describes `set`; returns how many.
fn assert_header_replies(parsed: &Parsed, set: (&str, &str, SetFamily, u8)) -> usize {
    let headers: Vec<&IpsetMessage> = parsed
        .replies
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == IpsetCmd::Header)
        .collect();
    let want = header_reply(set);
    assert!(headers.iter().all(|m| **m == want), "{headers:?}");
    headers.len()
}

#[test]
fn restore_existing() {
    let fixture = load("restore_existing");
    let entries = vec![
        Entry::ip_port(ip("10.0.0.1"), IPPROTO_TCP, 1),
        Entry::ip_port(ip("10.0.0.2"), IPPROTO_UDP, 2),
        Entry::ip_port(ip("10.0.0.3"), IPPROTO_SCTP, 3),
    ];
    let expected = restore_into_existing(CLUSTER_IP, &entries);
    assert_eq!(expected.len(), 1 + 3 + 1, "one ADD for the three lines");
    let parsed = assert_requests(&fixture, &expected);
    assert_protocol_reply(&parsed);
    assert_eq!(assert_header_replies(&parsed, CLUSTER_IP_SET), 3);
    assert_eq!(error_codes(&parsed), vec![0]);
    let answered: Vec<IpsetCmd> = assert_answers(&fixture).iter().map(|m| m.cmd).collect();
    assert_eq!(answered, vec![IpsetCmd::Add]);
}

#[test]
fn restore_error() {
    // Set-up added line 3's entry: the kernel applies lines 1-2, stops at
    // line 3 with IPSET_ERR_EXIST and rewrites the echoed request's LINENO
    // (sent as 1, the message's first line) to 3.
    let fixture = load("restore_error");
    let entries = vec![
        Entry::ip_port(ip("10.0.0.1"), IPPROTO_TCP, 1),
        Entry::ip_port(ip("10.0.0.2"), IPPROTO_TCP, 2),
        Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 80),
        Entry::ip_port(ip("10.0.0.4"), IPPROTO_TCP, 4),
    ];
    let parsed = assert_requests(&fixture, &restore_into_existing(CLUSTER_IP, &entries));
    assert_protocol_reply(&parsed);
    assert_eq!(assert_header_replies(&parsed, CLUSTER_IP_SET), 4);
    let (_, batch) = parsed.requests.last().unwrap();
    assert_eq!(batch.lineno(), Some(1));
    assert_eq!(error_codes(&parsed), vec![-IPSET_ERR_EXIST]);
    let lineno = error_lineno(&parsed.errors[0].1).expect("the kernel echoes LINENO");
    assert_eq!(lineno, 3);
    assert_eq!(entry_for_lineno(&entries, lineno), Some(&entries[2]));
    let answered: Vec<IpsetCmd> = assert_answers(&fixture).iter().map(|m| m.cmd).collect();
    assert_eq!(answered, vec![IpsetCmd::Add]);
}

/// The 300 lines of the capture script's `big_adds`.
fn big_entries() -> Vec<Entry> {
    (0..300u16)
        .map(|i| {
            let addr = format!("10.0.{}.{}", i / 250, i % 250 + 1);
            Entry::ip_port(ip(&addr), IPPROTO_TCP, 1000 + i)
        })
        .collect()
}

const BIG_SET: (&str, &str, SetFamily, u8) =
    ("big", "hash:ip,port", SetFamily::Inet, REV_HASH_IP_PORT);

#[test]
fn restore_big() {
    // 300 lines do not fit one page: `add_batch` must split where libipset
    // does. The tool asks HEADER for each line before adding it; the line
    // that no longer fits makes it send the full page first.
    let fixture = load("restore_big");
    let entries = big_entries();
    let batch = IpsetMessage::add_batch("big", &entries).messages;
    let linenos: Vec<Option<u32>> = batch.iter().map(IpsetMessage::lineno).collect();
    assert_eq!(linenos, vec![Some(1), Some(101), Some(201)]);
    for message in &batch {
        assert!(16 + message.to_bytes().len() <= IPSET_BATCH_BUFSIZE);
    }
    let mut expected = vec![IpsetMessage::protocol()];
    let mut pages = batch.clone().into_iter();
    for line in 1..=300 {
        expected.push(IpsetMessage::header("big"));
        if line == 101 || line == 201 {
            expected.push(pages.next().unwrap());
        }
    }
    expected.extend(pages);
    let parsed = assert_requests(&fixture, &expected);
    assert_protocol_reply(&parsed);
    assert_eq!(assert_header_replies(&parsed, BIG_SET), 300);
    assert_eq!(error_codes(&parsed), vec![0, 0, 0]);
    assert_eq!(assert_answers(&fixture), batch);
}

// ---------------------------------------------------------------------------
// Dumps of the two sets the set-up made.
// ---------------------------------------------------------------------------

/// What the set-up `two_sets` of the capture script made: KUBE-CLUSTER-IP
/// (hash:ip,port with comments) and KUBE-LOOP-BACK (hash:ip,port,ip),
/// created in that order without size options.
fn two_sets() -> Vec<SetInfo> {
    vec![
        SetInfo {
            name: CLUSTER_IP.into(),
            type_name: "hash:ip,port".into(),
            revision: REV_HASH_IP_PORT,
            family: NFPROTO_IPV4,
            index: Some(0),
            hash_size: Some(DEFAULT_HASH_SIZE),
            max_elem: Some(DEFAULT_MAX_ELEM),
            elements: 2,
            comment: true,
            entries: vec![
                Entry::ip_port(ip("10.96.0.10"), IPPROTO_TCP, 80)
                    .with_comment("default/kubernetes:https"),
                Entry::ip_port(ip("10.96.0.10"), IPPROTO_UDP, 53)
                    .with_comment("kube-system/kube-dns:dns"),
            ],
            ..SetInfo::default()
        },
        SetInfo {
            name: LOOP_BACK.into(),
            type_name: "hash:ip,port,ip".into(),
            revision: REV_HASH_IP_PORT_IP,
            family: NFPROTO_IPV4,
            index: Some(1),
            hash_size: Some(DEFAULT_HASH_SIZE),
            max_elem: Some(DEFAULT_MAX_ELEM),
            elements: 2,
            entries: vec![
                Entry::ip_port_ip(ip("10.244.1.2"), IPPROTO_TCP, 8080, ip("10.244.1.2")),
                Entry::ip_port_ip(ip("10.244.1.3"), IPPROTO_TCP, 8080, ip("10.244.1.3")),
            ],
            ..SetInfo::default()
        },
    ]
}

/// `got` equals `want` except for what changes from run to run: members
/// come in hash order (random initval), so both are compared sorted, and
/// the memory size only has to be positive.
fn assert_sets(got: Vec<SetInfo>, want: Vec<SetInfo>) {
    let normalise = |mut set: SetInfo| {
        set.entries.sort_by_key(|e| e.to_string());
        set.mem_size = 0;
        set
    };
    for set in &got {
        assert!(set.mem_size > 0, "{}: memsize", set.name);
        assert_eq!(set.elements as usize, set.entries.len(), "{}", set.name);
    }
    let got: Vec<SetInfo> = got.into_iter().map(normalise).collect();
    let want: Vec<SetInfo> = want.into_iter().map(normalise).collect();
    assert_eq!(got, want);
}

/// A hash set's header DATA also holds the bucket size (revisions with
/// `bucketsize`) and its random initval, neither of which `SetInfo` keeps.
fn assert_hash_header_extras(message: &IpsetMessage) {
    let data = message
        .attrs
        .iter()
        .find_map(|a| match a {
            IpsetAttr::Data(data) => Some(data),
            _ => None,
        })
        .expect("header DATA");
    assert!(data.contains(&DataAttr::BucketSize(12)), "{data:?}");
    assert!(data.iter().any(|a| matches!(a, DataAttr::InitVal(_))));
}

#[test]
fn list() {
    let fixture = load("list");
    let parsed = assert_requests(
        &fixture,
        &[IpsetMessage::protocol(), IpsetMessage::list(None)],
    );
    assert_protocol_reply(&parsed);
    let dump = dump(&fixture, &parsed);
    assert_eq!(dump.len(), 2, "one message per small set");
    for message in &dump {
        assert!(message.set_info().unwrap().has_header);
        assert_hash_header_extras(message);
    }
    assert_sets(merge_list_replies(dump).unwrap(), two_sets());
    assert!(
        parsed.errors.is_empty(),
        "a successful dump ends in DONE, no ack"
    );
}

#[test]
fn save() {
    // SAVE is answered with LIST messages, exactly as `ipset list`.
    let fixture = load("save");
    let parsed = assert_requests(
        &fixture,
        &[IpsetMessage::protocol(), IpsetMessage::save(None)],
    );
    assert_protocol_reply(&parsed);
    let dump = dump(&fixture, &parsed);
    assert!(dump.iter().all(|m| m.cmd == IpsetCmd::List));
    assert_eq!(dump.len(), 2);
    assert_sets(merge_list_replies(dump).unwrap(), two_sets());
    assert!(parsed.errors.is_empty());
}

#[test]
fn list_one() {
    let fixture = load("list_one");
    let parsed = assert_requests(
        &fixture,
        &[
            IpsetMessage::protocol(),
            IpsetMessage::list(Some(CLUSTER_IP)),
        ],
    );
    let dump = dump(&fixture, &parsed);
    assert_eq!(dump.len(), 1);
    let part = dump[0].set_info().unwrap();
    assert!(part.has_header);
    assert_eq!(part.set.set_family(), SetFamily::Inet);
    assert_hash_header_extras(&dump[0]);
    let mut want = two_sets();
    want.truncate(1);
    assert_sets(merge_list_replies(dump).unwrap(), want);
}

#[test]
fn list_big() {
    // 300 members do not fit one dump message: the first carries the
    // header, the rest only more ADT, and merging gives back one set.
    let fixture = load("list_big");
    let parsed = assert_requests(
        &fixture,
        &[IpsetMessage::protocol(), IpsetMessage::list(Some("big"))],
    );
    let dump = dump(&fixture, &parsed);
    assert!(dump.len() > 1, "300 members need more than one message");
    assert!(dump[0].set_info().unwrap().has_header);
    assert_hash_header_extras(&dump[0]);
    for message in &dump[1..] {
        assert!(!message.set_info().unwrap().has_header);
    }
    assert_sets(
        merge_list_replies(dump).unwrap(),
        vec![SetInfo {
            name: "big".into(),
            type_name: "hash:ip,port".into(),
            revision: REV_HASH_IP_PORT,
            family: NFPROTO_IPV4,
            index: Some(0),
            hash_size: Some(DEFAULT_HASH_SIZE),
            max_elem: Some(DEFAULT_MAX_ELEM),
            elements: 300,
            entries: big_entries(),
            ..SetInfo::default()
        }],
    );
    assert!(parsed.errors.is_empty());
}

#[test]
fn list_all_types() {
    // `two_sets` plus a bitmap:port (no family, a port range instead of
    // hash sizes), an inet6 hash:ip,port and a hash:ip,port,net created
    // with explicit sizes, in index order.
    let fixture = load("list_all_types");
    let parsed = assert_requests(
        &fixture,
        &[IpsetMessage::protocol(), IpsetMessage::list(None)],
    );
    assert_protocol_reply(&parsed);
    let dump = dump(&fixture, &parsed);
    assert_eq!(dump.len(), 5, "one message per small set");
    for message in &dump {
        let part = message.set_info().unwrap();
        assert!(part.has_header, "{}", part.set.name);
        if part.set.type_name.starts_with("hash:") {
            assert_hash_header_extras(message);
        }
    }
    let mut want = two_sets();
    want.extend([
        SetInfo {
            name: "KUBE-NODE-PORT-TCP".into(),
            type_name: "bitmap:port".into(),
            revision: REV_BITMAP_PORT,
            family: NFPROTO_UNSPEC,
            index: Some(2),
            port_range: Some((0, 65535)),
            elements: 1,
            entries: vec![Entry::port(30080)],
            ..SetInfo::default()
        },
        SetInfo {
            name: "KUBE-6-CLUSTER-IP".into(),
            type_name: "hash:ip,port".into(),
            revision: REV_HASH_IP_PORT,
            family: NFPROTO_IPV6,
            index: Some(3),
            hash_size: Some(DEFAULT_HASH_SIZE),
            max_elem: Some(DEFAULT_MAX_ELEM),
            elements: 1,
            entries: vec![Entry::ip_port(ip("fd00::10"), IPPROTO_UDP, 53)],
            ..SetInfo::default()
        },
        SetInfo {
            name: "KUBE-LOAD-BALANCER-SOURCE-CIDR".into(),
            type_name: "hash:ip,port,net".into(),
            revision: REV_HASH_IP_PORT_NET,
            family: NFPROTO_IPV4,
            index: Some(4),
            hash_size: Some(2048),
            max_elem: Some(1000),
            elements: 1,
            entries: vec![Entry::ip_port_net(
                ip("203.0.113.10"),
                IPPROTO_TCP,
                80,
                ip("198.51.100.0"),
                24,
            )],
            ..SetInfo::default()
        },
    ]);
    let sets = merge_list_replies(dump).unwrap();
    assert_eq!(sets[3].set_family(), SetFamily::Inet6);
    assert_sets(sets, want);
    assert!(parsed.errors.is_empty());
}

#[test]
fn list_terse() {
    // `list -t`: IPSET_FLAG_LIST_HEADER, the header without members (the
    // element count still says 2).
    let fixture = load("list_terse");
    let parsed = assert_requests(
        &fixture,
        &[
            IpsetMessage::protocol(),
            IpsetMessage::list_with_flags(Some(CLUSTER_IP), IPSET_FLAG_LIST_HEADER),
        ],
    );
    let dump = dump(&fixture, &parsed);
    assert_eq!(dump.len(), 1);
    assert!(dump[0]
        .attrs
        .iter()
        .all(|a| !matches!(a, IpsetAttr::Adt(_))));
    let sets = merge_list_replies(dump).unwrap();
    let mut want = two_sets().remove(0);
    want.entries.clear();
    assert_eq!(sets.len(), 1);
    assert!(sets[0].mem_size > 0);
    assert_eq!(
        SetInfo {
            mem_size: 0,
            ..sets[0].clone()
        },
        want
    );
}

#[test]
fn header() {
    // `ipset -n list NAME`: IPSET_FLAG_LIST_SETNAME, the kernel answers
    // with the name alone (no TYPENAME, so no header).
    let fixture = load("header");
    let parsed = assert_requests(
        &fixture,
        &[
            IpsetMessage::protocol(),
            IpsetMessage::list_with_flags(Some(CLUSTER_IP), IPSET_FLAG_LIST_SETNAME),
        ],
    );
    let dump = dump(&fixture, &parsed);
    assert_eq!(
        dump,
        vec![IpsetMessage::new(
            IpsetCmd::List,
            vec![
                IpsetAttr::Protocol(IPSET_PROTOCOL),
                IpsetAttr::SetName(CLUSTER_IP.into())
            ]
        )]
    );
    assert!(!dump[0].set_info().unwrap().has_header);
    let sets = merge_list_replies(dump).unwrap();
    assert_eq!(
        sets,
        vec![SetInfo {
            name: CLUSTER_IP.into(),
            ..SetInfo::default()
        }]
    );
}

// ---------------------------------------------------------------------------
// Whole-set commands.
// ---------------------------------------------------------------------------

#[test]
fn flush() {
    let parsed = check_named("flush", IpsetMessage::flush(CLUSTER_IP));
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn rename() {
    let parsed = check_named(
        "rename",
        IpsetMessage::rename(CLUSTER_IP, "KUBE-CLUSTER-IP-OLD"),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn swap() {
    let parsed = check_named(
        "swap",
        IpsetMessage::swap(CLUSTER_IP, "KUBE-CLUSTER-IP-NEW"),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn destroy() {
    let parsed = check_named("destroy", IpsetMessage::destroy(CLUSTER_IP));
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn destroy_in_use() {
    // Set-up references the set from an iptables-nft `-m set` rule.
    let parsed = check_named("destroy_in_use", IpsetMessage::destroy(CLUSTER_IP));
    assert_eq!(error_codes(&parsed), vec![-IPSET_ERR_BUSY]);
    assert_eq!(ipset_error_name(-IPSET_ERR_BUSY), Some("IPSET_ERR_BUSY"));
}

// ---------------------------------------------------------------------------
// Every file.
// ---------------------------------------------------------------------------

/// The fixtures that have a test of their own above.
const TESTED: &[&str] = &[
    "add_bitmap_port",
    "add_exists",
    "add_ip_port",
    "add_ip_port_comment",
    "add_ip_port_ip",
    "add_ip_port_net",
    "add_v6",
    "create_bitmap_port",
    "create_exists",
    "create_hash_ip",
    "create_hash_ip_port",
    "create_hash_ip_port_comment",
    "create_hash_ip_port_ip",
    "create_hash_ip_port_net",
    "create_hash_ip_port_sizes",
    "create_hash_ip_port_v6",
    "del",
    "destroy",
    "destroy_in_use",
    "flush",
    "header",
    "list",
    "list_all_types",
    "list_big",
    "list_one",
    "list_terse",
    "protocol_and_type",
    "rename",
    "restore_batch",
    "restore_big",
    "restore_error",
    "restore_existing",
    "save",
    "swap",
    "test",
    "test_absent",
    "version",
];

#[test]
fn every_fixture_parses_reemits_and_has_a_test() {
    let fixtures = Fixture::load_all(DIR);
    assert!(fixtures.len() >= TESTED.len());
    let mut untested = Vec::new();
    for fixture in &fixtures {
        let parsed = parse_all(fixture);
        assert!(!parsed.requests.is_empty(), "{}", fixture.name);
        assert_answers(fixture);
        if !TESTED.contains(&fixture.name.as_str()) {
            untested.push(fixture.name.clone());
        }
    }
    assert!(
        untested.is_empty(),
        "fixtures without a golden test of their own: {untested:?}"
    );
}
