//! Golden tests against conversations of the real `ipset` 7.17 tool with
//! the host kernel (6.18), captured with
//! `unshare -n strace -f -e trace=sendto,recvmsg -e write=3 -e read=3 ipset …`
//! and converted to the `kipvs-fixtures` format (`tests/host-captures/`).
//! Each file's `# command:` / `# setup:` lines say what ran.
//!
//! For every capture: all messages parse with no untyped attribute, every
//! ipset message re-emits to its exact bytes, and the requests equal the
//! builders' output (bytes, type and flags).

mod common;

use std::net::IpAddr;

use common::{assert_requests, error_codes, parse_all};
use kipvs_fixtures::Fixture;
use kipvs_packet_ipset::{
    entry_for_lineno, error_lineno, merge_list_replies, CreateOptions, Entry, IpsetCmd,
    IpsetMessage, SetFamily, SetInfo, SetType, IPSET_BATCH_BUFSIZE, IPSET_ERR_EXIST,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/host-captures");
const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;

fn load(name: &str) -> Fixture {
    Fixture::load(DIR, name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `ipset create` = PROTOCOL, TYPE query, CREATE.
fn create_conversation(
    name: &str,
    set_type: SetType,
    family: SetFamily,
    revision: u8,
    options: CreateOptions,
) -> Vec<IpsetMessage> {
    vec![
        IpsetMessage::protocol(),
        IpsetMessage::type_query(&set_type, family),
        IpsetMessage::create(name, &set_type, family, revision, &options),
    ]
}

/// `ipset add/del/test` = PROTOCOL, HEADER (to learn the type), command.
fn adt_conversation(name: &str, last: IpsetMessage) -> Vec<IpsetMessage> {
    vec![IpsetMessage::protocol(), IpsetMessage::header(name), last]
}

fn kube_sizes() -> CreateOptions {
    CreateOptions {
        hash_size: Some(1024),
        max_elem: Some(65536),
        ..CreateOptions::default()
    }
}

#[test]
fn protocol_handshake() {
    let fixture = load("protocol");
    let parsed = assert_requests(&fixture, &[IpsetMessage::protocol()]);
    assert_eq!(parsed.replies.len(), 1);
    assert_eq!(parsed.replies[0].1.protocol_reply().unwrap(), (7, 6));
}

#[test]
fn create_hash_ip_port() {
    let fixture = load("create_hash_ip_port");
    let parsed = assert_requests(
        &fixture,
        &create_conversation("kp", SetType::HashIpPort, SetFamily::Inet, 7, kube_sizes()),
    );
    // The TYPE reply names the revision the tool then used.
    let type_reply = parsed
        .replies
        .iter()
        .find(|(_, m)| m.cmd == IpsetCmd::Type)
        .unwrap();
    assert_eq!(type_reply.1.type_reply().unwrap(), (7, 0));
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn create_hash_ip_port_comment() {
    let options = CreateOptions {
        hash_size: Some(2048),
        max_elem: Some(1000),
        comment: true,
        ..CreateOptions::default()
    };
    let parsed = assert_requests(
        &load("create_hash_ip_port_comment"),
        &create_conversation("c", SetType::HashIpPort, SetFamily::Inet, 7, options),
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn create_hash_ip_port_ip() {
    assert_requests(
        &load("create_hash_ip_port_ip"),
        &create_conversation(
            "KUBE-LOOP-BACK",
            SetType::HashIpPortIp,
            SetFamily::Inet,
            6,
            kube_sizes(),
        ),
    );
}

#[test]
fn create_hash_ip_port_net() {
    assert_requests(
        &load("create_hash_ip_port_net"),
        &create_conversation(
            "KUBE-LOAD-BALANCER-SOURCE-CIDR",
            SetType::HashIpPortNet,
            SetFamily::Inet,
            8,
            kube_sizes(),
        ),
    );
}

#[test]
fn create_bitmap_port_uses_unspec_family() {
    let options = CreateOptions {
        port_range: Some((0, 65535)),
        ..CreateOptions::default()
    };
    let parsed = assert_requests(
        &load("create_bitmap_port"),
        &create_conversation(
            "KUBE-NODE-PORT-TCP",
            SetType::BitmapPort,
            SetFamily::Unspec,
            3,
            options,
        ),
    );
    let type_reply = parsed
        .replies
        .iter()
        .find(|(_, m)| m.cmd == IpsetCmd::Type)
        .unwrap();
    assert_eq!(type_reply.1.type_reply().unwrap(), (3, 0));
}

#[test]
fn create_hash_ip_port_v6() {
    assert_requests(
        &load("create_hash_ip_port_v6"),
        &[
            IpsetMessage::protocol(),
            // The tool asks TYPE with family inet even for an inet6 set.
            IpsetMessage::type_query(&SetType::HashIpPort, SetFamily::Inet),
            IpsetMessage::create(
                "KUBE-6-CLUSTER-IP",
                &SetType::HashIpPort,
                SetFamily::Inet6,
                7,
                &kube_sizes(),
            ),
        ],
    );
}

#[test]
fn create_hash_ip_without_options_sends_empty_data() {
    assert_requests(
        &load("create_hash_ip"),
        &create_conversation(
            "h",
            SetType::HashIp,
            SetFamily::Inet,
            6,
            CreateOptions::default(),
        ),
    );
}

#[test]
fn add_ip_port() {
    let entry = Entry::ip_port(ip("10.96.0.10"), TCP, 80);
    let parsed = assert_requests(
        &load("add_ip_port"),
        &adt_conversation("kp", IpsetMessage::add("kp", &entry)),
    );
    // The HEADER reply tells the type, family and revision of the set.
    let header = &parsed
        .replies
        .iter()
        .find(|(_, m)| m.cmd == IpsetCmd::Header)
        .unwrap()
        .1;
    assert_eq!(
        header,
        &IpsetMessage::new(
            IpsetCmd::Header,
            vec![
                kipvs_packet_ipset::IpsetAttr::Protocol(7),
                kipvs_packet_ipset::IpsetAttr::SetName("kp".into()),
                kipvs_packet_ipset::IpsetAttr::TypeName("hash:ip,port".into()),
                kipvs_packet_ipset::IpsetAttr::Family(2),
                kipvs_packet_ipset::IpsetAttr::Revision(7),
            ]
        )
    );
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn add_ip_port_comment() {
    let entry = Entry::ip_port(ip("10.96.0.10"), UDP, 53).with_comment("default/kube-dns:dns");
    assert_requests(
        &load("add_ip_port_comment"),
        &adt_conversation("c", IpsetMessage::add("c", &entry)),
    );
}

#[test]
fn add_ip_port_ip() {
    let entry = Entry::ip_port_ip(ip("10.244.1.2"), TCP, 8080, ip("10.244.1.2"));
    assert_requests(
        &load("add_ip_port_ip"),
        &adt_conversation(
            "KUBE-LOOP-BACK",
            IpsetMessage::add("KUBE-LOOP-BACK", &entry),
        ),
    );
}

#[test]
fn add_ip_port_net() {
    let entry = Entry::ip_port_net(ip("10.96.0.20"), TCP, 443, ip("10.0.0.0"), 8);
    assert_requests(
        &load("add_ip_port_net"),
        &adt_conversation("n", IpsetMessage::add("n", &entry)),
    );
}

#[test]
fn add_bitmap_port() {
    assert_requests(
        &load("add_bitmap_port"),
        &adt_conversation("b", IpsetMessage::add("b", &Entry::port(30080))),
    );
}

#[test]
fn add_v6() {
    let entry = Entry::ip_port(ip("fd00::10"), UDP, 53);
    assert_requests(
        &load("add_v6"),
        &adt_conversation("k6", IpsetMessage::add("k6", &entry)),
    );
}

#[test]
fn add_existing_with_excl_is_ipset_err_exist() {
    let entry = Entry::ip_port(ip("10.96.0.10"), TCP, 80);
    let parsed = assert_requests(
        &load("add_exist_error"),
        &adt_conversation("kp", IpsetMessage::add("kp", &entry)),
    );
    assert_eq!(error_codes(&parsed), vec![-IPSET_ERR_EXIST]);
    assert_eq!(
        kipvs_packet_ipset::ipset_error_name(-IPSET_ERR_EXIST),
        Some("IPSET_ERR_EXIST")
    );
}

#[test]
fn del_and_test() {
    let entry = Entry::ip_port(ip("10.96.0.10"), TCP, 80);
    let parsed = assert_requests(
        &load("del"),
        &adt_conversation("kp", IpsetMessage::del("kp", &entry)),
    );
    assert_eq!(error_codes(&parsed), vec![0]);

    let parsed = assert_requests(
        &load("test"),
        &adt_conversation("kp", IpsetMessage::test("kp", &entry)),
    );
    assert_eq!(error_codes(&parsed), vec![0], "member: test acks");

    let missing = Entry::ip_port(ip("10.96.0.11"), TCP, 80);
    let parsed = assert_requests(
        &load("test_missing"),
        &adt_conversation("kp", IpsetMessage::test("kp", &missing)),
    );
    assert_eq!(
        error_codes(&parsed),
        vec![-IPSET_ERR_EXIST],
        "non-member: IPSET_ERR_EXIST"
    );
}

#[test]
fn flush_rename_swap_destroy() {
    let p = IpsetMessage::protocol;
    assert_requests(&load("flush"), &[p(), IpsetMessage::flush("kp")]);
    assert_requests(&load("rename"), &[p(), IpsetMessage::rename("kp", "kq")]);
    assert_requests(&load("swap"), &[p(), IpsetMessage::swap("kp", "kq")]);
    assert_requests(&load("destroy"), &[p(), IpsetMessage::destroy("kp")]);
}

fn restore_entries() -> Vec<Entry> {
    vec![
        Entry::ip_port(ip("10.0.0.1"), TCP, 1),
        Entry::ip_port(ip("10.0.0.2"), UDP, 2),
        Entry::ip_port(ip("10.0.0.3"), SCTP, 3),
    ]
}

#[test]
fn restore_batch_is_one_adt_message() {
    // `ipset restore` sends PROTOCOL, one HEADER per line, then the batch.
    let mut expected = vec![IpsetMessage::protocol()];
    expected.extend((0..3).map(|_| IpsetMessage::header("kp")));
    expected.extend(IpsetMessage::add_batch("kp", &restore_entries()));
    let parsed = assert_requests(&load("restore_batch"), &expected);
    assert_eq!(error_codes(&parsed), vec![0]);
}

#[test]
fn restore_error_reports_the_failing_lineno() {
    let entries = vec![
        Entry::ip_port(ip("10.0.0.1"), TCP, 1),
        Entry::ip_port(ip("10.0.0.2"), TCP, 2),
        Entry::ip_port(ip("10.96.0.10"), TCP, 80), // already in the set
        Entry::ip_port(ip("10.0.0.4"), TCP, 4),
    ];
    let mut expected = vec![IpsetMessage::protocol()];
    expected.extend((0..4).map(|_| IpsetMessage::header("kp")));
    expected.extend(IpsetMessage::add_batch("kp", &entries));
    let parsed = assert_requests(&load("restore_error"), &expected);
    let (code, echoed) = parsed.errors.last().unwrap();
    assert_eq!(*code, -IPSET_ERR_EXIST);
    let lineno = error_lineno(echoed).expect("the kernel echoes the request with LINENO");
    assert_eq!(lineno, 3);
    assert_eq!(entry_for_lineno(&entries, lineno), Some(&entries[2]));
}

#[test]
fn restore_big_splits_exactly_like_libipset() {
    let entries: Vec<Entry> = (0..300u32)
        .map(|i| {
            let addr = format!("10.0.{}.{}", i / 250, i % 250 + 1);
            Entry::ip_port(ip(&addr), TCP, 1000 + i as u16)
        })
        .collect();
    let batch = IpsetMessage::add_batch("big", &entries);
    // The tool asks HEADER for each line before adding it; the line that
    // does not fit any more makes it commit the full page first.
    let mut with_commits = vec![IpsetMessage::protocol()];
    let mut batches = batch.clone().into_iter();
    for line in 0..300 {
        with_commits.push(IpsetMessage::header("big"));
        if line == 100 || line == 200 {
            with_commits.push(batches.next().unwrap());
        }
    }
    with_commits.extend(batches);
    let fixture = load("restore_big");
    assert_requests(&fixture, &with_commits);
    assert_eq!(batch.len(), 3);
    for message in &batch {
        assert!(16 + message.to_bytes().len() <= IPSET_BATCH_BUFSIZE);
    }
}

fn kube_sets() -> Vec<(String, String, u8, u8, Vec<String>)> {
    vec![
        (
            "KUBE-CLUSTER-IP",
            "hash:ip,port",
            7,
            2,
            vec!["10.96.0.10,tcp:80", "10.96.0.10,udp:53"],
        ),
        (
            "KUBE-LOOP-BACK",
            "hash:ip,port,ip",
            6,
            2,
            vec!["10.244.1.2,tcp:8080,10.244.1.2"],
        ),
        ("KUBE-NODE-PORT-TCP", "bitmap:port", 3, 0, vec!["30080"]),
        (
            "KUBE-6-CLUSTER-IP",
            "hash:ip,port",
            7,
            10,
            vec!["fd00::10,udp:53"],
        ),
        (
            "KUBE-LOAD-BALANCER-SOURCE-CIDR",
            "hash:ip,port,net",
            8,
            2,
            vec!["10.96.0.20,tcp:443,10.0.0.0/8"],
        ),
        (
            "c",
            "hash:ip,port",
            7,
            2,
            vec!["10.96.0.10,udp:53 comment \"default/kube-dns:dns\""],
        ),
    ]
    .into_iter()
    .map(|(n, t, r, f, e)| {
        (
            n.to_owned(),
            t.to_owned(),
            r,
            f,
            e.into_iter().map(str::to_owned).collect(),
        )
    })
    .collect()
}

fn check_dump(sets: &[SetInfo]) {
    let got: Vec<(String, String, u8, u8, Vec<String>)> = sets
        .iter()
        .map(|s| {
            // Member order is the kernel's hash order, which differs
            // between runs (random initval): compare sorted.
            let mut entries: Vec<String> = s.entries.iter().map(|e| e.to_string()).collect();
            entries.sort();
            (
                s.name.clone(),
                s.type_name.clone(),
                s.revision,
                s.family,
                entries,
            )
        })
        .collect();
    assert_eq!(got, kube_sets());
    for set in sets {
        assert_eq!(set.elements as usize, set.entries.len(), "{}", set.name);
        assert_eq!(set.references, 0);
        assert!(set.mem_size > 0);
        assert_eq!(set.comment, set.name == "c", "{}", set.name);
        if set.type_name == "bitmap:port" {
            assert_eq!(set.port_range, Some((0, 65535)));
            assert_eq!(set.hash_size, None);
        } else {
            assert_eq!((set.hash_size, set.max_elem), (Some(1024), Some(65536)));
        }
    }
    let indexes: Vec<Option<u16>> = sets.iter().map(|s| s.index).collect();
    assert_eq!(indexes, (0..6).map(Some).collect::<Vec<_>>());
}

#[test]
fn list_all_sets() {
    let parsed = assert_requests(
        &load("list"),
        &[IpsetMessage::protocol(), IpsetMessage::list(None)],
    );
    let dump = parsed
        .replies
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == IpsetCmd::List);
    check_dump(&merge_list_replies(dump).unwrap());
}

#[test]
fn save_all_sets_answers_with_list_messages() {
    let parsed = assert_requests(
        &load("save"),
        &[IpsetMessage::protocol(), IpsetMessage::save(None)],
    );
    let dump = parsed
        .replies
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == IpsetCmd::List);
    check_dump(&merge_list_replies(dump).unwrap());
}

#[test]
fn list_one_set() {
    let parsed = assert_requests(
        &load("list_one"),
        &[
            IpsetMessage::protocol(),
            IpsetMessage::list(Some("KUBE-CLUSTER-IP")),
        ],
    );
    let dump: Vec<IpsetMessage> = parsed
        .replies
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == IpsetCmd::List)
        .collect();
    assert_eq!(dump.len(), 1);
    let part = dump[0].set_info().unwrap();
    assert!(part.has_header);
    assert_eq!(part.set.name, "KUBE-CLUSTER-IP");
    assert_eq!(part.set.set_family(), SetFamily::Inet);
    assert_eq!(
        part.set.entries,
        vec![
            Entry::ip_port(ip("10.96.0.10"), TCP, 80),
            Entry::ip_port(ip("10.96.0.10"), UDP, 53)
        ]
    );
}

#[test]
fn list_big_set_spans_messages_and_merges() {
    let parsed = assert_requests(
        &load("list_big"),
        &[IpsetMessage::protocol(), IpsetMessage::list(Some("big"))],
    );
    let dump: Vec<IpsetMessage> = parsed
        .replies
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == IpsetCmd::List)
        .collect();
    assert!(dump.len() > 1, "300 members need more than one message");
    assert!(dump[0].set_info().unwrap().has_header);
    assert!(!dump[1].set_info().unwrap().has_header);
    let sets = merge_list_replies(dump).unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].elements, 300);
    let mut ports: Vec<u16> = sets[0].entries.iter().map(|e| e.port.unwrap()).collect();
    ports.sort_unstable();
    assert_eq!(ports, (1000..1300).collect::<Vec<u16>>());
}

#[test]
fn every_host_capture_parses_and_reemits() {
    let fixtures = Fixture::load_all(DIR);
    assert!(fixtures.len() >= 25);
    for fixture in &fixtures {
        let parsed = parse_all(fixture);
        assert!(!parsed.requests.is_empty(), "{}", fixture.name);
    }
}

#[test]
fn list_terse_and_names_only_send_flags() {
    use kipvs_packet_ipset::constants::{IPSET_FLAG_LIST_HEADER, IPSET_FLAG_LIST_SETNAME};
    let parsed = assert_requests(
        &load("list_terse"),
        &[
            IpsetMessage::protocol(),
            IpsetMessage::list_with_flags(Some("kp"), IPSET_FLAG_LIST_HEADER),
        ],
    );
    let dump: Vec<IpsetMessage> = parsed
        .replies
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == IpsetCmd::List)
        .collect();
    let sets = merge_list_replies(dump).unwrap();
    assert_eq!(
        (
            sets[0].name.as_str(),
            sets[0].elements,
            sets[0].entries.len()
        ),
        ("kp", 1, 0)
    );

    let parsed = assert_requests(
        &load("list_names"),
        &[
            IpsetMessage::protocol(),
            IpsetMessage::list_with_flags(Some("kp"), IPSET_FLAG_LIST_SETNAME),
        ],
    );
    let dump: Vec<IpsetMessage> = parsed
        .replies
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == IpsetCmd::List)
        .collect();
    let sets = merge_list_replies(dump).unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(
        (sets[0].name.as_str(), sets[0].type_name.as_str()),
        ("kp", "")
    );
}
