//! Unit tests with hand-built bytes.

use std::net::IpAddr;

use netlink_packet_core::{
    DefaultNla, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLA_F_NESTED,
    NLA_F_NET_BYTEORDER,
};

use crate::{constants::*, *};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn header(nlmsg_type: u16) -> NetlinkHeader {
    let mut header = NetlinkHeader::default();
    header.message_type = nlmsg_type;
    header
}

fn entries(n: u32, comment: bool) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let e = Entry::ip_port(
                ip(&format!("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256)),
                6,
                i as u16,
            );
            if comment {
                e.with_comment(format!("c{i}"))
            } else {
                e
            }
        })
        .collect()
}

/// Every message fits a page, LINENOs run 1..=n across messages, and the
/// command-level LINENO is the first element's.
fn check_batch(messages: &[IpsetMessage], n: u32) {
    let mut next = 1;
    for message in messages {
        assert!(16 + message.to_bytes().len() <= IPSET_BATCH_BUFSIZE);
        let elements = match message.attrs.last() {
            Some(IpsetAttr::Adt(elements)) => elements,
            other => panic!("batch message ends with {other:?}"),
        };
        assert_eq!(message.lineno(), Some(next));
        for data in elements {
            assert_eq!(data.last(), Some(&DataAttr::LineNo(next)));
            next += 1;
        }
        // Round trip through the parser.
        assert_eq!(
            &IpsetMessage::parse(message.nlmsg_type(), &message.to_bytes()).unwrap(),
            message
        );
    }
    assert_eq!(next, n + 1);
}

#[test]
fn batch_splits_at_the_page_like_libipset() {
    // Host capture of `ipset restore` (ipset 7.17): 100 plain
    // hash:ip,port elements per page, and 78 then 72 for 150 elements with
    // comments "c0".."c149" (the check reserves 256 bytes for a comment).
    let plain = IpsetMessage::add_batch("big", &entries(300, false)).messages;
    assert_eq!(
        plain
            .iter()
            .map(|m| m.to_bytes().len() + 16)
            .collect::<Vec<_>>(),
        vec![4048; 3]
    );
    check_batch(&plain, 300);

    let commented = IpsetMessage::add_batch("kc", &entries(150, true)).messages;
    let sizes: Vec<usize> = commented
        .iter()
        .map(|m| match m.attrs.last() {
            Some(IpsetAttr::Adt(e)) => e.len(),
            _ => 0,
        })
        .collect();
    assert_eq!(sizes, vec![78, 72]);
    check_batch(&commented, 150);
}

#[test]
fn batch_edge_cases() {
    assert!(IpsetMessage::add_batch("s", &[]).messages.is_empty());
    let one = IpsetMessage::del_batch("s", &entries(1, false)).messages;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].cmd, IpsetCmd::Del);
    check_batch(&one, 1);
    let v6: Vec<Entry> = (0..500u16)
        .map(|i| Entry::ip_port(ip(&format!("fd00::{i:x}")), 17, i))
        .collect();
    let messages = IpsetMessage::add_batch("s6", &v6).messages;
    assert!(messages.len() > 1);
    check_batch(&messages, 500);
}

#[test]
fn entry_for_lineno_maps_back() {
    let list = entries(3, false);
    assert_eq!(entry_for_lineno(&list, 1), Some(&list[0]));
    assert_eq!(entry_for_lineno(&list, 3), Some(&list[2]));
    assert_eq!(entry_for_lineno(&list, 0), None);
    assert_eq!(entry_for_lineno(&list, 4), None);
}

#[test]
fn error_lineno_reads_the_echoed_request() {
    let mut request = IpsetMessage::add_batch("kp", &entries(4, false))
        .messages
        .remove(0);
    // What call_ad does to the echo: command-level LINENO := failing line.
    for attr in &mut request.attrs {
        if let IpsetAttr::LineNo(l) = attr {
            *l = 3;
        }
    }
    let payload = request.to_bytes();
    let mut echoed = Vec::new();
    echoed.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    echoed.extend_from_slice(&request.nlmsg_type().to_ne_bytes());
    echoed.extend_from_slice(&[0; 10]);
    echoed.extend_from_slice(&payload);
    assert_eq!(error_lineno(&echoed), Some(3));
    // A capped echo (header only) carries no line number.
    assert_eq!(error_lineno(&echoed[..16]), None);
}

#[test]
fn unknown_attributes_parse_as_other_and_reemit() {
    // Top level: PROTOCOL, unknown id 12 (u32); DATA (create context) with
    // HASHSIZE and an unknown id 31; ADT element with SKBMARK (27).
    let bytes: Vec<u8> = vec![
        2, 0, 0, 0, //
        5, 0, 1, 0, 7, 0, 0, 0, //
        8, 0, 12, 0, 1, 2, 3, 4, //
        20, 0, 7, 0x80, //
        8, 0, 18, 0x40, 0, 0, 4, 0, //
        8, 0, 31, 0x40, 9, 9, 9, 9, //
    ];
    let message = IpsetMessage::parse(0x0602, &bytes).unwrap();
    assert_eq!(
        message.attrs,
        vec![
            IpsetAttr::Protocol(7),
            IpsetAttr::Other(DefaultNla::new(12, vec![1, 2, 3, 4])),
            IpsetAttr::Data(vec![
                DataAttr::HashSize(1024),
                DataAttr::Other(DefaultNla::new(31 | NLA_F_NET_BYTEORDER, vec![9; 4])),
            ]),
        ]
    );
    assert_eq!(message.to_bytes(), bytes);

    let adt: Vec<u8> = vec![
        2, 0, 0, 0, //
        16, 0, 8, 0x80, //
        12, 0, 7, 0x80, //
        8, 0, 27, 0x40, 0, 0, 0, 5, //
    ];
    let message = IpsetMessage::parse(0x0607, &adt).unwrap();
    assert_eq!(
        message.attrs,
        vec![IpsetAttr::Adt(vec![vec![DataAttr::Other(
            DefaultNla::new(IPSET_ATTR_SKBMARK | NLA_F_NET_BYTEORDER, vec![0, 0, 0, 5])
        )]])]
    );
    assert_eq!(message.to_bytes(), adt);
}

#[test]
fn shared_ids_follow_the_data_context() {
    // id 17 and id 26: INITVAL/MEMSIZE in a create DATA, ETHER/COMMENT in
    // an ADT DATA.
    let data = |value: Vec<u8>| -> Vec<u8> {
        let mut out = vec![2, 0, 0, 0];
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&(IPSET_ATTR_DATA | NLA_F_NESTED).to_ne_bytes());
        out.extend(value);
        out
    };
    let create = data(vec![
        8, 0, 17, 0x40, 0xde, 0xad, 0xbe, 0xef, 8, 0, 26, 0x40, 0, 0, 1, 0,
    ]);
    let parsed = IpsetMessage::parse(0x0602, &create).unwrap();
    assert_eq!(
        parsed.attrs,
        vec![IpsetAttr::Data(vec![
            DataAttr::InitVal(0xdeadbeef),
            DataAttr::MemSize(256)
        ])]
    );
    let add = data(vec![
        6, 0, 26, 0, b'h', 0, 0, 0, 10, 0, 17, 0, 1, 2, 3, 4, 5, 6, 0, 0,
    ]);
    let parsed = IpsetMessage::parse(0x0609, &add).unwrap();
    assert_eq!(
        parsed.attrs,
        vec![IpsetAttr::Data(vec![
            DataAttr::Comment("h".into()),
            DataAttr::Other(DefaultNla::new(IPSET_ATTR_ETHER, vec![1, 2, 3, 4, 5, 6])),
        ])]
    );
    assert_eq!(parsed.to_bytes(), add);
}

#[test]
fn truncated_buffers_are_decode_errors() {
    let good = IpsetMessage::add("kp", &Entry::ip_port(ip("10.96.0.10"), 6, 80)).to_bytes();
    // Payload: nfgenmsg (4), PROTOCOL (8), SETNAME "kp" (8), then DATA up
    // to the very end. Cutting the nfgenmsg, or anywhere into DATA, fails.
    assert_eq!(
        u16::from_ne_bytes([good[20], good[21]]) as usize,
        good.len() - 20
    );
    for len in (0..4).chain(21..good.len()) {
        assert!(
            IpsetMessage::parse(0x0609, &good[..len]).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
    // A u32 attribute with two bytes.
    let short_u32 = vec![2, 0, 0, 0, 6, 0, 9, 0x40, 0, 1, 0, 0];
    assert!(IpsetMessage::parse(0x0609, &short_u32).is_err());
    // An IPv4 address of 3 bytes inside IP.
    let bad_ip = vec![
        2, 0, 0, 0, 16, 0, 7, 0x80, 12, 0, 1, 0x80, 7, 0, 1, 0x40, 10, 0, 0, 0,
    ];
    assert!(IpsetMessage::parse(0x0609, &bad_ip).is_err());
    // A string without its NUL.
    let no_nul = vec![2, 0, 0, 0, 6, 0, 2, 0, b'k', b'p', 0, 0];
    assert!(IpsetMessage::parse(0x0609, &no_nul).is_err());
}

#[test]
fn other_subsystems_are_rejected() {
    let payload = IpsetMessage::protocol().to_bytes();
    let err = IpsetMessage::deserialize(&header(0x0a01), &payload).unwrap_err();
    assert!(err.to_string().contains("subsystem 10"), "{err}");
    assert!(IpsetMessage::deserialize(&header(0x0601), &payload).is_ok());
}

#[test]
fn works_inside_netlink_message() {
    let mut message = NetlinkMessage::from(IpsetMessage::list(Some("KUBE-CLUSTER-IP")));
    message.header.flags = IpsetMessage::list(None).nlmsg_flags();
    message.finalize();
    assert_eq!(message.header.message_type, 0x0607);
    let mut buffer = vec![0; message.buffer_len()];
    message.serialize(&mut buffer);
    let parsed = NetlinkMessage::<IpsetMessage>::deserialize(&buffer).unwrap();
    assert_eq!(parsed.header.flags, 0x0305);
    match parsed.payload {
        NetlinkPayload::InnerMessage(inner) => {
            assert_eq!(inner, IpsetMessage::list(Some("KUBE-CLUSTER-IP")))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn entry_display_like_ipset_list() {
    let cases = [
        (
            Entry::ip_port_ip(ip("10.96.0.10"), 6, 80, ip("10.244.1.2")),
            "10.96.0.10,tcp:80,10.244.1.2",
        ),
        (Entry::ip_port(ip("fd00::10"), 17, 53), "fd00::10,udp:53"),
        (Entry::port(30080), "30080"),
        (
            Entry::ip_port_net(ip("10.96.0.20"), 132, 443, ip("10.0.0.0"), 8),
            "10.96.0.20,sctp:443,10.0.0.0/8",
        ),
        (Entry::ip(ip("10.0.0.1")), "10.0.0.1"),
        (
            Entry::ip_port(ip("10.96.0.10"), 17, 53).with_comment("default/kube-dns:dns"),
            "10.96.0.10,udp:53 comment \"default/kube-dns:dns\"",
        ),
    ];
    for (entry, text) in cases {
        assert_eq!(entry.to_string(), text);
        // And the entry survives the trip through DATA attributes.
        assert_eq!(Entry::from_data_attrs(&entry.to_data_attrs()), entry);
    }
}

#[test]
fn kernel_values_convert_both_ways() {
    for value in 0..=255u8 {
        assert_eq!(u8::from(IpsetCmd::from(value)), value);
        assert_eq!(u8::from(SetFamily::from(value)), value);
    }
    assert_eq!(IpsetCmd::from(14), IpsetCmd::GetByName);
    assert_eq!(SetFamily::from(10), SetFamily::Inet6);
    for t in [
        "hash:ip",
        "hash:ip,port",
        "hash:ip,port,ip",
        "hash:ip,port,net",
        "bitmap:port",
        "list:set",
    ] {
        assert_eq!(SetType::from(t).type_name(), t);
    }
    assert_eq!(SetType::from("list:set"), SetType::Other("list:set".into()));
}

#[test]
fn error_names() {
    assert_eq!(ipset_error_name(-4103), Some("IPSET_ERR_EXIST"));
    assert_eq!(
        ipset_error_name(IPSET_ERR_PROTOCOL),
        Some("IPSET_ERR_PROTOCOL")
    );
    assert_eq!(ipset_error_name(-2), None);
    assert_eq!(
        ipset_error_name(-4352),
        None,
        "type-specific needs the type"
    );
    assert_eq!(
        ipset_type_error_name("hash:ip,port", -4352),
        Some("IPSET_ERR_HASH_FULL")
    );
    assert_eq!(
        ipset_type_error_name("bitmap:port", -4352),
        Some("IPSET_ERR_BITMAP_RANGE")
    );
    assert_eq!(ipset_error_name(i32::MIN), None);
}

#[test]
fn replies_read_back() {
    let protocol = IpsetMessage::new(
        IpsetCmd::Protocol,
        vec![IpsetAttr::Protocol(7), IpsetAttr::ProtocolMin(6)],
    );
    assert_eq!(protocol.protocol_reply().unwrap(), (7, 6));
    let old = IpsetMessage::new(IpsetCmd::Protocol, vec![IpsetAttr::Protocol(6)]);
    assert_eq!(old.protocol_reply().unwrap(), (6, 6));
    let byname = IpsetMessage::new(
        IpsetCmd::GetByName,
        vec![
            IpsetAttr::Protocol(7),
            IpsetAttr::Family(2),
            IpsetAttr::Index(4),
        ],
    );
    // INDEX is a net16 with NLA_F_NET_BYTEORDER (nla_put_net16).
    assert_eq!(&byname.to_bytes()[20..28], &[6, 0, 11, 0x40, 0, 4, 0, 0]);
    assert_eq!(
        IpsetMessage::parse(0x060e, &byname.to_bytes())
            .unwrap()
            .index()
            .unwrap(),
        4
    );
    assert!(protocol.index().is_err());
    assert!(IpsetMessage::list(None).set_info().is_err(), "no SETNAME");
}

#[test]
fn continuation_for_an_earlier_set_is_an_error() {
    let head = |name: &str| {
        IpsetMessage::new(
            IpsetCmd::List,
            vec![
                IpsetAttr::SetName(name.into()),
                IpsetAttr::TypeName("hash:ip".into()),
            ],
        )
    };
    let more = |name: &str| {
        IpsetMessage::new(
            IpsetCmd::List,
            vec![
                IpsetAttr::SetName(name.into()),
                IpsetAttr::Adt(vec![vec![DataAttr::Ip(IpAddrAttr::from_kernel(ip(
                    "10.0.0.1",
                )))]]),
            ],
        )
    };
    let sets = merge_list_replies(vec![head("a"), more("a"), more("a"), head("b")]).unwrap();
    assert_eq!(
        sets.iter()
            .map(|s| (s.name.as_str(), s.entries.len()))
            .collect::<Vec<_>>(),
        vec![("a", 2), ("b", 0)]
    );
    assert!(merge_list_replies(vec![head("a"), head("b"), more("a")]).is_err());
}

#[test]
fn an_element_the_kernel_would_refuse_is_rejected_by_line_and_the_others_sent() {
    // A comment of 4000 bytes: more than IPSET_MAX_COMMENT_SIZE, and too
    // big for a page even alone. The builder used to abort on it.
    let mut list = entries(250, true);
    list[120] = list[120].clone().with_comment("x".repeat(4000));
    list[200] = list[200]
        .clone()
        .with_comment("y".repeat(IPSET_MAX_COMMENT_SIZE + 1));
    let batch = IpsetMessage::add_batch("kc", &list);
    assert_eq!(
        batch.rejected,
        vec![
            RejectedEntry {
                index: 120,
                lineno: 121,
                reason: RejectReason::CommentTooLong { len: 4000 },
            },
            RejectedEntry {
                index: 200,
                lineno: 201,
                reason: RejectReason::CommentTooLong {
                    len: IPSET_MAX_COMMENT_SIZE + 1
                },
            },
        ]
    );
    assert_eq!(
        batch.rejected[0].to_string(),
        "line 121: comment of 4000 bytes, the kernel takes at most 255"
    );
    // Every other element is in a message, with its own LINENO, and every
    // message fits a page.
    let mut sent = Vec::new();
    for message in &batch.messages {
        assert!(message.to_bytes().len() + 16 <= IPSET_BATCH_BUFSIZE);
        let Some(IpsetAttr::Adt(elements)) = message.attrs.last() else {
            panic!("no ADT")
        };
        for element in elements {
            let Some(DataAttr::LineNo(lineno)) = element.last() else {
                panic!("no LINENO")
            };
            sent.push(*lineno);
        }
    }
    let expected: Vec<u32> = (1..=250).filter(|l| *l != 121 && *l != 201).collect();
    assert_eq!(sent, expected);
    // The longest comment the kernel takes is sent.
    let longest = vec![entries(1, false)[0]
        .clone()
        .with_comment("z".repeat(IPSET_MAX_COMMENT_SIZE))];
    let batch = IpsetMessage::add_batch("kc", &longest);
    assert!(batch.rejected.is_empty());
    assert_eq!(batch.messages.len(), 1);
}

#[test]
fn a_set_name_too_long_for_any_page_rejects_every_element_without_panicking() {
    let batch = IpsetMessage::del_batch(&"n".repeat(4000), &entries(3, false));
    assert!(batch.messages.is_empty());
    assert_eq!(
        batch.rejected.iter().map(|r| r.lineno).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(matches!(
        batch.rejected[0].reason,
        RejectReason::DoesNotFitAPage { .. }
    ));
}
