//! Unit tests against byte layouts written out from the kernel headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DefaultNla, Emitable, NetlinkMessage, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REQUEST,
};

use crate::build::*;
use crate::chain::{ChainAttr, ChainPolicy, HookAttr, NfHook};
use crate::data::{value_of, verdict_of, DataAttr, Register, VerdictCode};
use crate::expr::*;
use crate::exprs;
use crate::header::NfProto;
use crate::message::{batch, NftBody, NftMessage};
use crate::rule::{comment_of, comment_userdata, RuleAttr};
use crate::table::TableAttr;
use crate::xt_set::*;

fn emit(msg: &NftMessage) -> Vec<u8> {
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    buf
}

fn parse(message_type: u16, bytes: &[u8]) -> NftMessage {
    NftMessage::parse_with_type(message_type, bytes).unwrap()
}

fn roundtrip(msg: &NftMessage) {
    use netlink_packet_core::NetlinkSerializable;
    let bytes = emit(msg);
    assert_eq!(&parse(msg.message_type(), &bytes), msg);
    // And through the generic netlink framing.
    let mut nl = NetlinkMessage::from(msg.clone());
    nl.header.flags = msg.request_flags();
    nl.header.sequence_number = 7;
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    let back = NetlinkMessage::<NftMessage>::deserialize(&buf).unwrap();
    assert_eq!(back, nl);
}

#[test]
fn new_table_matches_kernel_layout() {
    let msg = new_table(&Table::new(NfProto::Ipv4, "kube-ipvs"));
    #[rustfmt::skip]
    let expected = vec![
        2, 0, 0, 0, // nfgenmsg: NFPROTO_IPV4, v0, res_id 0
        14, 0, 1, 0, b'k', b'u', b'b', b'e', b'-', b'i', b'p', b'v', b's', 0, 0, 0, // NAME
        8, 0, 2, 0, 0, 0, 0, 0, // FLAGS (be32 0)
    ];
    assert_eq!(emit(&msg), expected);
    use netlink_packet_core::NetlinkSerializable;
    assert_eq!(msg.message_type(), 0x0a00);
    assert_eq!(msg.request_flags(), NLM_F_REQUEST | NLM_F_ACK);
    roundtrip(&msg);
}

#[test]
fn batch_delimiters_carry_the_subsystem_and_want_no_ack() {
    use netlink_packet_core::NetlinkSerializable;
    let msgs = batch(vec![del_table(NfProto::Ipv6, "t")]);
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0].message_type(), 0x10);
    assert_eq!(msgs[2].message_type(), 0x11);
    // NFPROTO_UNSPEC, version 0, res_id = NFNL_SUBSYS_NFTABLES big-endian.
    assert_eq!(emit(&msgs[0]), vec![0, 0, 0, 10]);
    assert_eq!(emit(&msgs[2]), vec![0, 0, 0, 10]);
    assert_eq!(msgs[0].request_flags(), NLM_F_REQUEST);
    assert!(!msgs[0].expects_ack() && !msgs[2].expects_ack());
    assert_eq!(msgs[1].message_type(), 0x0a02);
    assert_eq!(msgs[1].request_flags(), NLM_F_REQUEST | NLM_F_ACK);
    assert!(msgs[1].expects_ack());
    assert_eq!(parse(0x10, &[0, 0, 0, 10]), msgs[0]);
}

#[test]
fn base_chain_hook_priority_is_signed_big_endian() {
    let chain = Chain::base(
        NfProto::Ipv4,
        "t",
        "pre",
        ChainType::Nat,
        NfHook::PreRouting,
        -100,
    )
    .with_policy(ChainPolicy::Accept);
    let msg = new_chain(&chain);
    #[rustfmt::skip]
    let expected = vec![
        2, 0, 0, 0,
        6, 0, 1, 0, b't', 0, 0, 0,                        // TABLE
        8, 0, 3, 0, b'p', b'r', b'e', 0,                  // NAME
        8, 0, 7, 0, b'n', b'a', b't', 0,                  // TYPE
        8, 0, 5, 0, 0, 0, 0, 1,                           // POLICY accept
        20, 0, 4, 0x80,                                   // HOOK, nested
            8, 0, 1, 0, 0, 0, 0, 0,                       // HOOKNUM 0
            8, 0, 2, 0, 0xff, 0xff, 0xff, 0x9c,           // PRIORITY -100
    ];
    assert_eq!(emit(&msg), expected);
    roundtrip(&msg);
    let regular = new_chain(&Chain::regular(NfProto::Ipv4, "t", "KUBE-X"));
    assert_eq!(
        regular.body,
        NftBody::NewChain(vec![
            ChainAttr::Table("t".into()),
            ChainAttr::Name("KUBE-X".into())
        ])
    );
    roundtrip(&regular);
}

#[test]
fn jump_verdict_layout() {
    let rule = Rule::new(NfProto::Ipv4, "t", "c", vec![exprs::jump("X")]);
    let bytes = emit(&new_rule(&rule));
    #[rustfmt::skip]
    let expected = vec![
        2, 0, 0, 0,
        6, 0, 1, 0, b't', 0, 0, 0,                     // TABLE
        6, 0, 2, 0, b'c', 0, 0, 0,                     // CHAIN
        60, 0, 4, 0x80,                                // EXPRESSIONS
          56, 0, 1, 0x80,                              // LIST_ELEM
            14, 0, 1, 0, b'i', b'm', b'm', b'e', b'd', b'i', b'a', b't', b'e', 0, 0, 0,
            36, 0, 2, 0x80,                            // EXPR_DATA
              8, 0, 1, 0, 0, 0, 0, 0,                  // DREG verdict
              24, 0, 2, 0x80,                          // IMMEDIATE_DATA
                20, 0, 2, 0x80,                        // DATA_VERDICT
                  8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfd,  // CODE -3 (NFT_JUMP)
                  6, 0, 2, 0, b'X', 0, 0, 0,           // CHAIN
    ];
    assert_eq!(bytes, expected);
    let parsed = parse(0x0a06, &bytes);
    let NftBody::NewRule(attrs) = &parsed.body else {
        panic!("{parsed:?}")
    };
    let RuleAttr::Expressions(list) = &attrs[2] else {
        panic!("{attrs:?}")
    };
    let Expr::Immediate(imm) = &list[0] else {
        panic!("{list:?}")
    };
    let ImmediateAttr::Data(data) = &imm[1] else {
        panic!("{imm:?}")
    };
    assert_eq!(verdict_of(data), Some((VerdictCode::Jump, Some("X"))));
}

fn every_expression() -> Vec<Expr> {
    let mut all = Vec::new();
    all.extend(exprs::saddr_in_cidr(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
        8,
        true,
    ));
    all.extend(exprs::saddr_in_cidr(
        IpAddr::V4(Ipv4Addr::new(10, 16, 0, 0)),
        12,
        false,
    ));
    all.extend(exprs::daddr_in_cidr(
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        128,
        false,
    ));
    all.extend(exprs::mark_set_or(0x4000));
    all.extend(exprs::mark_and_eq(0x4000, 0x4000));
    all.extend(exprs::ct_state_in(
        NF_CT_STATE_ESTABLISHED_BIT | NF_CT_STATE_RELATED_BIT,
    ));
    all.extend(exprs::fib_daddr_type_local());
    all.extend(exprs::meta_l4proto(6));
    all.push(exprs::counter());
    all.push(exprs::masquerade(true));
    all.push(exprs::masquerade(false));
    all.push(exprs::reject(NfProto::Ipv4));
    all.push(exprs::reject(NfProto::Inet));
    all.push(exprs::xt_set_match(
        3,
        &[SetDir::Dst, SetDir::Dst, SetDir::Src],
        false,
    ));
    all.push(Expr::Target(vec![
        TargetAttr::Name("MASQUERADE".into()),
        TargetAttr::Rev(0),
        TargetAttr::Info(vec![0; 24]),
    ]));
    all.push(Expr::Ct(vec![
        CtAttr::Key(CtKey::Mark),
        CtAttr::Sreg(Register::reg32(2)),
        CtAttr::Direction(1),
    ]));
    all.push(Expr::Payload(vec![
        PayloadAttr::Sreg(Register::Reg2),
        PayloadAttr::Base(PayloadBase::Transport),
        PayloadAttr::Offset(2),
        PayloadAttr::Len(2),
        PayloadAttr::CsumType(1),
        PayloadAttr::CsumOffset(16),
        PayloadAttr::CsumFlags(1),
    ]));
    all.push(Expr::Bitwise(vec![
        BitwiseAttr::Sreg(Register::Reg1),
        BitwiseAttr::Dreg(Register::Reg1),
        BitwiseAttr::Op(BitwiseOp::Lshift),
        BitwiseAttr::Len(4),
        BitwiseAttr::Data(vec![DataAttr::Value(vec![0, 0, 0, 8])]),
    ]));
    all.push(exprs::accept());
    all.push(exprs::drop());
    all.push(exprs::ret());
    all.push(exprs::goto("KUBE-SVC"));
    all.push(Expr::Other {
        name: "lookup".into(),
        data: vec![
            DefaultNla::new(1, b"__set0\0".to_vec()),
            DefaultNla::new(2, vec![0, 0, 0, 1]),
        ],
    });
    all
}

#[test]
fn every_expression_kind_round_trips() {
    let exprs = every_expression();
    let rule = Rule::new(
        NfProto::Inet,
        "kube-ipvs",
        "KUBE-POSTROUTING",
        exprs.clone(),
    )
    .with_comment("kube-ipvs static rule");
    let msg = new_rule(&rule);
    roundtrip(&msg);
    let NftBody::NewRule(attrs) = parse(0x0a06, &emit(&msg)).body else {
        panic!()
    };
    let Some(RuleAttr::Expressions(list)) =
        attrs.iter().find(|a| matches!(a, RuleAttr::Expressions(_)))
    else {
        panic!("{attrs:?}")
    };
    assert_eq!(list, &exprs);
    let names: Vec<&str> = list.iter().map(Expr::name).collect();
    for kind in [
        "payload",
        "cmp",
        "bitwise",
        "meta",
        "immediate",
        "ct",
        "fib",
        "counter",
        "masq",
        "reject",
        "match",
        "target",
        "lookup",
    ] {
        assert!(names.contains(&kind), "{kind} missing from {names:?}");
    }
    let userdata = attrs.iter().find_map(|a| match a {
        RuleAttr::Userdata(u) => Some(u.clone()),
        _ => None,
    });
    assert_eq!(
        comment_of(&userdata.unwrap()).as_deref(),
        Some("kube-ipvs static rule")
    );
    // libnftnl TLV: type NFTNL_UDATA_RULE_COMMENT, length incl. NUL, text.
    assert_eq!(comment_userdata("ab"), vec![0, 3, b'a', b'b', 0]);
    assert_eq!(comment_of(&[1, 1, 9, 0, 2, b'x', 0]).as_deref(), Some("x"));
}

#[test]
fn unknown_expression_and_attributes_parse_as_other() {
    // An expression named "quota" with NFTA_QUOTA_BYTES (be64) and a
    // payload expression carrying an attribute id 99 we do not know.
    #[rustfmt::skip]
    let rule = vec![
        2, 0, 0, 0,
        72, 0, 4, 0x80,
          32, 0, 1, 0x80,
            10, 0, 1, 0, b'q', b'u', b'o', b't', b'a', 0, 0, 0,
            16, 0, 2, 0x80,
              12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0,
          36, 0, 1, 0x80,
            12, 0, 1, 0, b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0,
            20, 0, 2, 0x80,
              8, 0, 2, 0, 0, 0, 0, 1,
              8, 0, 99, 0, 1, 2, 3, 4,
    ];
    let msg = parse(0x0a06, &rule);
    let expected = NftBody::NewRule(vec![RuleAttr::Expressions(vec![
        Expr::Other {
            name: "quota".into(),
            data: vec![DefaultNla::new(1, vec![0, 0, 0, 0, 0, 0, 4, 0])],
        },
        Expr::Payload(vec![
            PayloadAttr::Base(PayloadBase::Network),
            PayloadAttr::Other(DefaultNla::new(99, vec![1, 2, 3, 4])),
        ]),
    ])]);
    assert_eq!(msg.body, expected);
    assert_eq!(emit(&msg), rule);
}

#[test]
fn unknown_kernel_values_keep_their_number() {
    assert_eq!(MetaKey::from(200u32), MetaKey::Other(200));
    assert_eq!(u32::from(MetaKey::Other(200)), 200);
    assert_eq!(VerdictCode::from(-5), VerdictCode::Return);
    assert_eq!(i32::from(VerdictCode::Jump), -3);
    assert_eq!(NfProto::from(10u8), NfProto::Ipv6);
    assert_eq!(u32::from(NfHook::PostRouting), 4);
    assert_eq!(Register::from(9u32), Register::reg32(1));
}

#[test]
fn other_messages_parse_generically() {
    // NEWSET (0x0a09) with a NAME, and nft_compat's GET (0x0b00) that
    // iptables-nft sends to probe match revisions.
    let set = vec![10, 0, 0, 0, 7, 0, 2, 0, b's', b'1', 0, 0];
    let msg = parse(0x0a09, &set);
    assert_eq!(
        msg.body,
        NftBody::Other {
            message_type: 0x0a09,
            attrs: vec![DefaultNla::new(2, b"s1\0".to_vec())]
        }
    );
    assert_eq!(msg.header.family, NfProto::Ipv6);
    assert_eq!(emit(&msg), set);
    let compat = parse(0x0b00, &[2, 0, 0, 0]);
    assert_eq!(
        compat.body,
        NftBody::Other {
            message_type: 0x0b00,
            attrs: vec![]
        }
    );
}

#[test]
fn truncated_buffers_are_decode_errors() {
    // nfgenmsg cut short
    assert!(NftMessage::parse_with_type(0x0a00, &[2, 0]).is_err());
    // attribute claims 14 bytes, buffer holds 8
    assert!(
        NftMessage::parse_with_type(0x0a00, &[2, 0, 0, 0, 14, 0, 1, 0, b'k', b'u', 0, 0]).is_err()
    );
    // FLAGS with 2 value bytes instead of 4
    assert!(NftMessage::parse_with_type(0x0a00, &[2, 0, 0, 0, 6, 0, 2, 0, 0, 0, 0, 0]).is_err());
    // a rule whose expression list ends mid-attribute
    let full = emit(&new_rule(&Rule::new(
        NfProto::Ipv4,
        "t",
        "c",
        vec![exprs::counter()],
    )));
    for cut in [full.len() - 4, full.len() - 13, 22] {
        let err = NftMessage::parse_with_type(0x0a06, &full[..cut]);
        assert!(err.is_err(), "cut at {cut} parsed: {err:?}");
    }
    // an expression without a name
    let nameless = [2, 0, 0, 0, 12, 0, 4, 0x80, 8, 0, 1, 0x80, 4, 0, 2, 0x80];
    assert!(NftMessage::parse_with_type(0x0a06, &nameless).is_err());
    // xt_set info of the wrong size
    assert!(XtSetInfoMatchV4::parse(&[0; 40]).is_err());
    assert!(XtSetInfoMatchV1::parse(&[0; 2]).is_err());
}

#[test]
fn xt_set_match_v4_layout() {
    let info = XtSetInfoMatchV4::new(XtSetInfo::new(
        0x0102,
        &[SetDir::Dst, SetDir::Dst, SetDir::Src],
        false,
    ));
    let bytes = info.to_bytes();
    assert_eq!(bytes.len(), 48);
    // index is host order (u16), dim 3, flags: dimension 3 is a source.
    assert_eq!(
        &bytes[0..4],
        &[0x0102u16.to_ne_bytes()[0], 0x0102u16.to_ne_bytes()[1], 3, 8]
    );
    assert!(bytes[4..].iter().all(|b| *b == 0));
    let back = XtSetInfoMatchV4::parse(&bytes).unwrap();
    assert_eq!(back, info);
    assert_eq!(
        back.match_set.dirs(),
        vec![SetDir::Dst, SetDir::Dst, SetDir::Src]
    );
    assert!(!back.match_set.inverted());

    let inv = XtSetInfo::new(5, &[SetDir::Src, SetDir::Dst], true);
    assert_eq!(
        (inv.dim, inv.flags),
        (2, IPSET_INV_MATCH | IPSET_DIM_ONE_SRC)
    );
    let mut counters = XtSetInfoMatchV4::new(inv);
    counters.packets = IpSetCounterMatch {
        value: 0x1122334455667788,
        op: 1,
    };
    counters.bytes = IpSetCounterMatch { value: 9, op: 4 };
    counters.flags = 0x80;
    let raw = counters.to_bytes();
    assert_eq!(&raw[8..16], &0x1122334455667788u64.to_ne_bytes());
    assert_eq!((raw[16], raw[32]), (1, 4));
    assert_eq!(&raw[40..44], &0x80u32.to_ne_bytes());
    assert_eq!(XtSetInfoMatchV4::parse(&raw).unwrap(), counters);

    let v1 = XtSetInfoMatchV1 { match_set: inv };
    assert_eq!(v1.to_bytes().len(), XT_SET_INFO_MATCH_V1_LEN);
    assert_eq!(XtSetInfoMatchV1::parse(&v1.to_bytes()).unwrap(), v1);

    let Expr::Match(attrs) =
        exprs::xt_set_match(0x0102, &[SetDir::Dst, SetDir::Dst, SetDir::Src], false)
    else {
        panic!()
    };
    assert_eq!(
        attrs,
        vec![
            MatchAttr::Name("set".into()),
            MatchAttr::Rev(4),
            MatchAttr::Info(bytes)
        ]
    );
}

#[test]
fn cidr_matches_use_prefix_bytes_or_a_mask() {
    let ten = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0));
    assert_eq!(
        exprs::saddr_in_cidr(ten, 8, true),
        vec![
            exprs::payload_load(PayloadBase::Network, 12, 1, Register::Reg1),
            exprs::cmp(Register::Reg1, CmpOp::Neq, vec![10]),
        ]
    );
    let odd = IpAddr::V4(Ipv4Addr::new(172, 17, 9, 9));
    assert_eq!(
        exprs::saddr_in_cidr(odd, 12, false),
        vec![
            exprs::payload_load(PayloadBase::Network, 12, 4, Register::Reg1),
            exprs::bitwise(Register::Reg1, vec![0xff, 0xf0, 0, 0], vec![0; 4]),
            exprs::cmp(Register::Reg1, CmpOp::Eq, vec![172, 16, 0, 0]),
        ]
    );
    let v6: IpAddr = "fd00:1::".parse().unwrap();
    let v6_exprs = exprs::saddr_in_cidr(v6, 64, false);
    assert_eq!(
        v6_exprs[0],
        exprs::payload_load(PayloadBase::Network, 8, 8, Register::Reg1)
    );
    let Expr::Cmp(cmp) = &v6_exprs[1] else {
        panic!()
    };
    let CmpAttr::Data(data) = &cmp[2] else {
        panic!()
    };
    assert_eq!(value_of(data), Some(&[0xfd, 0, 0, 1, 0, 0, 0, 0][..]));
}

#[test]
fn mark_and_ct_constants_are_host_order() {
    let exprs = exprs::mark_set_or(0x4000);
    let Expr::Bitwise(attrs) = &exprs[1] else {
        panic!()
    };
    assert!(attrs.contains(&BitwiseAttr::Mask(vec![DataAttr::Value(
        0xffffbfffu32.to_ne_bytes().to_vec()
    )])));
    assert!(attrs.contains(&BitwiseAttr::Xor(vec![DataAttr::Value(
        0x4000u32.to_ne_bytes().to_vec()
    )])));
    assert_eq!(
        exprs[2],
        Expr::Meta(vec![
            MetaAttr::Key(MetaKey::Mark),
            MetaAttr::Sreg(Register::Reg1)
        ])
    );
    let ct = exprs::ct_state_in(NF_CT_STATE_NEW_BIT);
    assert_eq!(
        ct[0],
        Expr::Ct(vec![
            CtAttr::Key(CtKey::State),
            CtAttr::Dreg(Register::Reg1)
        ])
    );
    assert_eq!(
        ct[1],
        exprs::bitwise(Register::Reg1, 8u32.to_ne_bytes().to_vec(), vec![0; 4])
    );
}

#[test]
fn requests_have_the_documented_flags() {
    assert_eq!(
        get_tables(NfProto::Unspec).request_flags(),
        NLM_F_REQUEST | NLM_F_DUMP
    );
    assert_eq!(
        get_table(NfProto::Ipv4, "t").request_flags(),
        NLM_F_REQUEST | NLM_F_ACK
    );
    assert_eq!(
        get_chains(NfProto::Ipv4, "t").request_flags(),
        NLM_F_REQUEST | NLM_F_DUMP
    );
    assert_eq!(
        get_rules(NfProto::Ipv4, "t").request_flags(),
        NLM_F_REQUEST | NLM_F_DUMP
    );
    let rule = new_rule(&Rule::new(NfProto::Ipv4, "t", "c", vec![exprs::accept()]));
    assert_eq!(
        rule.request_flags(),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND
    );
    let del = del_rule(NfProto::Ipv4, "t", "c", 42);
    assert_eq!(
        del.body,
        NftBody::DelRule(vec![
            RuleAttr::Table("t".into()),
            RuleAttr::Chain("c".into()),
            RuleAttr::Handle(42)
        ])
    );
    // handle is a big-endian u64
    assert_eq!(&emit(&del)[20..32], &[12, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 42]);
    for msg in [
        del,
        get_tables(NfProto::Ipv6),
        del_chain(NfProto::Ipv4, "t", "c"),
    ] {
        roundtrip(&msg);
    }
}

#[test]
fn dump_reply_with_counters_and_handle_parses() {
    // A NEWTABLE as the kernel dumps it: NAME, FLAGS, USE, HANDLE (be64),
    // nests without NLA_F_NESTED (nla_nest_start_noflag).
    #[rustfmt::skip]
    let table = vec![
        2, 0, 0x12, 0x34,
        6, 0, 1, 0, b't', 0, 0, 0,
        8, 0, 2, 0, 0, 0, 0, 0,
        8, 0, 3, 0, 0, 0, 0, 3,
        12, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 9,
    ];
    let msg = parse(0x0a00, &table);
    assert_eq!(msg.header.res_id, 0x1234);
    assert_eq!(
        msg.body,
        NftBody::NewTable(vec![
            TableAttr::Name("t".into()),
            TableAttr::Flags(0),
            TableAttr::Use(3),
            TableAttr::Handle(9)
        ])
    );
    #[rustfmt::skip]
    let chain = vec![
        2, 0, 0, 0,
        28, 0, 8, 0,
          12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0,
          12, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 5,
        20, 0, 4, 0,
          8, 0, 1, 0, 0, 0, 0, 4,
          8, 0, 2, 0, 0, 0, 0, 100,
    ];
    let NftBody::NewChain(attrs) = parse(0x0a03, &chain).body else {
        panic!()
    };
    assert_eq!(
        attrs,
        vec![
            ChainAttr::Counters(vec![CounterAttr::Bytes(256), CounterAttr::Packets(5)]),
            ChainAttr::Hook(vec![
                HookAttr::Hooknum(NfHook::PostRouting),
                HookAttr::Priority(100)
            ]),
        ]
    );
}

#[test]
fn xt_set_info_with_an_impossible_dimension_count_is_a_decode_error() {
    // A kernel (or a garbled reply) may carry any u8 as `dim`: a shift by it
    // must never happen, and the parsers refuse it.
    for dim in [0u8, 7, 8, 9, 200, 255] {
        let mut v4 = [0u8; XT_SET_INFO_MATCH_V4_LEN];
        v4[2] = dim;
        v4[3] = 0xff;
        let err = XtSetInfoMatchV4::parse(&v4).unwrap_err();
        assert!(err.to_string().contains("dim"), "dim {dim}: {err}");
        let mut v1 = [0u8; XT_SET_INFO_MATCH_V1_LEN];
        v1[2] = dim;
        assert!(XtSetInfoMatchV1::parse(&v1).is_err(), "dim {dim}");
    }
    // Built by hand (the fields are public), the directions stop at the
    // largest dimension count instead of shifting past the flag byte.
    let info = XtSetInfo {
        index: 1,
        dim: 255,
        flags: 0xff,
    };
    assert_eq!(info.dirs().len(), IPSET_DIM_MAX);
    for dim in 1..=IPSET_DIM_MAX as u8 {
        let mut v4 = [0u8; XT_SET_INFO_MATCH_V4_LEN];
        v4[2] = dim;
        let parsed = XtSetInfoMatchV4::parse(&v4).unwrap();
        assert_eq!(parsed.match_set.dirs().len(), usize::from(dim));
    }
}
