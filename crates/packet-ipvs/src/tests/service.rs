use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::support::*;
use crate::*;

fn tcp_v4_key() -> ServiceKey {
    ServiceKey::Tuple {
        addr: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10)),
        protocol: Protocol::Tcp,
        port: 80,
    }
}

// Layout of `ipvsadm -A -t 10.96.0.10:80 -s rr` per libipvs
// ipvs_nl_fill_service_attr: nest with NLA_F_NESTED (libnl), AF, PROTOCOL,
// 16-byte ADDR, big-endian PORT, NUL-terminated SCHED_NAME, FLAGS {0, ~0},
// TIMEOUT, NETMASK.
#[cfg(target_endian = "little")]
#[test]
fn new_service_tcp_v4_matches_libipvs_layout() {
    let raw: &[u8] = &[
        0x01, 0x01, 0x00, 0x00, // NEW_SERVICE, version 1
        0x54, 0x00, 0x01, 0x80, // SERVICE | NLA_F_NESTED, 84 bytes
        0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF = AF_INET
        0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, // PROTOCOL = TCP
        0x14, 0x00, 0x03, 0x00, 0x0a, 0x60, 0x00, 0x0a, // ADDR 10.96.0.10
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   rest of the union
        0x00, 0x00, 0x00, 0x00, //
        0x06, 0x00, 0x04, 0x00, 0x00, 0x50, 0x00, 0x00, // PORT 80, big endian
        0x07, 0x00, 0x06, 0x00, b'r', b'r', 0x00, 0x00, // SCHED_NAME "rr\0"
        0x0c, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, // FLAGS flags=0
        0xff, 0xff, 0xff, 0xff, //                         mask=~0
        0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, // TIMEOUT 0
        0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, // NETMASK /32
    ];
    let expected = IpvsMessage::new_service(&Service::new(tcp_v4_key(), "rr"));
    assert_golden(raw, &expected);
}

#[test]
fn v6_service_defaults_to_prefix_length_128() {
    let addr = IpAddr::V6("fd00::10".parse::<Ipv6Addr>().unwrap());
    let key = ServiceKey::Tuple {
        addr,
        protocol: Protocol::Udp,
        port: 53,
    };
    let service = Service::new(key, "rr");
    assert_eq!(service.netmask, 128);
    let raw = genl(
        IPVS_CMD_NEW_SERVICE,
        &[nested(
            IPVS_CMD_ATTR_SERVICE | F_NESTED,
            &[
                nla(IPVS_SVC_ATTR_AF, &u16_ne(10)),
                nla(IPVS_SVC_ATTR_PROTOCOL, &u16_ne(17)),
                nla(
                    IPVS_SVC_ATTR_ADDR,
                    &"fd00::10".parse::<Ipv6Addr>().unwrap().octets(),
                ),
                nla(IPVS_SVC_ATTR_PORT, &53u16.to_be_bytes()),
                nla(IPVS_SVC_ATTR_SCHED_NAME, b"rr\0"),
                nla(IPVS_SVC_ATTR_FLAGS, &[u32_ne(0), u32_ne(!0)].concat()),
                nla(IPVS_SVC_ATTR_TIMEOUT, &u32_ne(0)),
                nla(IPVS_SVC_ATTR_NETMASK, &u32_ne(128)),
            ],
        )],
    );
    assert_golden(&raw, &IpvsMessage::new_service(&service));
    // And a fwmark -6 service gets the same default.
    let fwmark = ServiceKey::Fwmark {
        af: AddressFamily::Inet6,
        mark: 7,
    };
    assert_eq!(Service::new(fwmark, "rr").netmask, 128);
    assert_eq!(Service::new(tcp_v4_key(), "rr").netmask, 0xffff_ffff);
}

#[test]
fn persistent_sh_service_with_pe_name_keeps_libipvs_order() {
    let mut service = Service::new(tcp_v4_key(), "sh");
    service.flags = ServiceFlags::PERSISTENT | ServiceFlags(IP_VS_SVC_F_SCHED_SH_PORT);
    service.timeout = 600;
    service.pe_name = Some("sip".into());
    let raw = genl(
        IPVS_CMD_SET_SERVICE,
        &[nested(
            IPVS_CMD_ATTR_SERVICE | F_NESTED,
            &[
                nla(IPVS_SVC_ATTR_AF, &u16_ne(2)),
                nla(IPVS_SVC_ATTR_PROTOCOL, &u16_ne(6)),
                nla(IPVS_SVC_ATTR_ADDR, &addr4([10, 96, 0, 10])),
                nla(IPVS_SVC_ATTR_PORT, &80u16.to_be_bytes()),
                nla(IPVS_SVC_ATTR_SCHED_NAME, b"sh\0"),
                nla(IPVS_SVC_ATTR_PE_NAME, b"sip\0"),
                nla(IPVS_SVC_ATTR_FLAGS, &[u32_ne(0x11), u32_ne(!0)].concat()),
                nla(IPVS_SVC_ATTR_TIMEOUT, &u32_ne(600)),
                nla(IPVS_SVC_ATTR_NETMASK, &u32_ne(0xffff_ffff)),
            ],
        )],
    );
    let expected = IpvsMessage::set_service(&service);
    assert_golden(&raw, &expected);
    assert_eq!(parse(&raw).service().unwrap(), service);
}

#[test]
fn fwmark_service_has_no_tuple_attributes() {
    let key = ServiceKey::Fwmark {
        af: AddressFamily::Inet,
        mark: 0x4000,
    };
    let raw = genl(
        IPVS_CMD_DEL_SERVICE,
        &[nested(
            IPVS_CMD_ATTR_SERVICE | F_NESTED,
            &[
                nla(IPVS_SVC_ATTR_AF, &u16_ne(2)),
                nla(IPVS_SVC_ATTR_FWMARK, &u32_ne(0x4000)),
                nla(IPVS_SVC_ATTR_SCHED_NAME, b"\0"),
                nla(IPVS_SVC_ATTR_FLAGS, &[u32_ne(0), u32_ne(!0)].concat()),
                nla(IPVS_SVC_ATTR_TIMEOUT, &u32_ne(0)),
                nla(IPVS_SVC_ATTR_NETMASK, &u32_ne(0xffff_ffff)),
            ],
        )],
    );
    assert_golden(&raw, &IpvsMessage::del_service(&key));
    assert_eq!(
        ServiceKey::from_attrs(parse(&raw).service_attrs().unwrap()).unwrap(),
        key
    );
}

/// A kernel dump part: nest without NLA_F_NESTED (nla_nest_start_noflag),
/// HASHED set, STATS with u32/u64 mix plus a PAD, STATS64 all u64.
fn kernel_service_reply() -> Vec<u8> {
    genl(
        IPVS_CMD_NEW_SERVICE,
        &[nested(
            IPVS_CMD_ATTR_SERVICE,
            &[
                nla(IPVS_SVC_ATTR_AF, &u16_ne(2)),
                nla(IPVS_SVC_ATTR_PROTOCOL, &u16_ne(17)),
                nla(IPVS_SVC_ATTR_ADDR, &addr4([10, 96, 0, 53])),
                nla(IPVS_SVC_ATTR_PORT, &53u16.to_be_bytes()),
                nla(IPVS_SVC_ATTR_SCHED_NAME, b"wrr\0"),
                nla(IPVS_SVC_ATTR_FLAGS, &[u32_ne(0x3), u32_ne(!0)].concat()),
                nla(IPVS_SVC_ATTR_TIMEOUT, &u32_ne(600)),
                nla(IPVS_SVC_ATTR_NETMASK, &u32_ne(0xffff_ffff)),
                nested(
                    IPVS_SVC_ATTR_STATS,
                    &[
                        nla(IPVS_STATS_ATTR_CONNS, &u32_ne(5)),
                        nla(IPVS_STATS_ATTR_INPKTS, &u32_ne(6)),
                        nla(IPVS_STATS_ATTR_OUTPKTS, &u32_ne(7)),
                        nla(IPVS_STATS_ATTR_PAD, &[]),
                        nla(IPVS_STATS_ATTR_INBYTES, &u64_ne(800)),
                        nla(IPVS_STATS_ATTR_OUTBYTES, &u64_ne(900)),
                        nla(IPVS_STATS_ATTR_CPS, &u32_ne(1)),
                        nla(IPVS_STATS_ATTR_INPPS, &u32_ne(2)),
                        nla(IPVS_STATS_ATTR_OUTPPS, &u32_ne(3)),
                        nla(IPVS_STATS_ATTR_INBPS, &u32_ne(4)),
                        nla(IPVS_STATS_ATTR_OUTBPS, &u32_ne(5)),
                    ],
                ),
                nested(
                    IPVS_SVC_ATTR_STATS64,
                    &[
                        nla(IPVS_STATS_ATTR_CONNS, &u64_ne(5_000_000_000)),
                        nla(IPVS_STATS_ATTR_INPKTS, &u64_ne(6)),
                        nla(IPVS_STATS_ATTR_OUTPKTS, &u64_ne(7)),
                        nla(IPVS_STATS_ATTR_INBYTES, &u64_ne(800)),
                        nla(IPVS_STATS_ATTR_OUTBYTES, &u64_ne(900)),
                        nla(IPVS_STATS_ATTR_CPS, &u64_ne(1)),
                        nla(IPVS_STATS_ATTR_INPPS, &u64_ne(2)),
                        nla(IPVS_STATS_ATTR_OUTPPS, &u64_ne(3)),
                        nla(IPVS_STATS_ATTR_INBPS, &u64_ne(4)),
                        nla(IPVS_STATS_ATTR_OUTBPS, &u64_ne(5)),
                    ],
                ),
            ],
        )],
    )
}

#[test]
fn kernel_reply_masks_hashed_and_prefers_stats64() {
    let raw = kernel_service_reply();
    let msg = parse(&raw);
    assert_eq!(emit(&msg), raw, "kernel reply must re-emit byte for byte");
    match &msg.attrs[0] {
        IpvsCmdAttr::Service(nest) => {
            assert!(!nest.nested_flag);
            assert!(nest
                .attrs
                .iter()
                .any(|a| matches!(a, SvcAttr::Stats(s) if s.contains(&StatsAttr::Pad))));
        }
        other => panic!("expected SERVICE, got {other:?}"),
    }
    let service = msg.service().unwrap();
    assert_eq!(
        service.key,
        ServiceKey::Tuple {
            addr: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 53)),
            protocol: Protocol::Udp,
            port: 53
        }
    );
    assert_eq!(service.scheduler, "wrr");
    assert_eq!(
        service.flags,
        ServiceFlags::PERSISTENT,
        "HASHED (0x2) must be masked off"
    );
    assert_eq!(service.timeout, 600);
    let stats = service.stats.unwrap();
    assert_eq!(
        stats.conns, 5_000_000_000,
        "STATS64 wins over the u32 STATS"
    );
    assert_eq!((stats.inbytes, stats.outbytes, stats.outbps), (800, 900, 5));
}

#[test]
fn hashed_flag_is_masked_and_mask_is_applied() {
    let key_attrs = || {
        vec![
            SvcAttr::Af(AddressFamily::Inet),
            SvcAttr::Fwmark(1),
            SvcAttr::SchedName("rr".into()),
            SvcAttr::Timeout(0),
            SvcAttr::Netmask(0xffff_ffff),
        ]
    };
    let with_flags = |flags: IpvsFlags| {
        let mut attrs = key_attrs();
        attrs.push(SvcAttr::Flags(flags));
        Service::from_attrs(&attrs).unwrap().flags
    };
    assert_eq!(
        with_flags(IpvsFlags {
            flags: IP_VS_SVC_F_HASHED,
            mask: !0
        }),
        ServiceFlags::EMPTY
    );
    assert_eq!(
        with_flags(IpvsFlags {
            flags: IP_VS_SVC_F_HASHED | IP_VS_SVC_F_ONEPACKET,
            mask: !0
        }),
        ServiceFlags::ONEPACKET
    );
    // Bits outside the mask are not meaningful (libipvs: flags & mask).
    assert_eq!(
        with_flags(IpvsFlags {
            flags: IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED1,
            mask: IP_VS_SVC_F_SCHED1
        }),
        ServiceFlags::SCHED1
    );
    // Missing FLAGS is an error, not a default.
    assert!(Service::from_attrs(&key_attrs()).is_err());
}

#[test]
fn service_key_errors_instead_of_panicking() {
    // No AF.
    let no_af = [
        SvcAttr::Protocol(Protocol::Tcp),
        SvcAttr::Addr(vec![10, 0, 0, 1]),
        SvcAttr::Port(80),
    ];
    let err = ServiceKey::from_attrs(&no_af).unwrap_err();
    assert!(err.to_string().contains("AF"), "{err}");
    // Wrong-length addresses for the family.
    for (af, len) in [
        (AddressFamily::Inet, 5),
        (AddressFamily::Inet, 0),
        (AddressFamily::Inet6, 4),
    ] {
        let attrs = [
            SvcAttr::Af(af),
            SvcAttr::Protocol(Protocol::Tcp),
            SvcAttr::Addr(vec![1; len]),
            SvcAttr::Port(80),
        ];
        let err = ServiceKey::from_attrs(&attrs).unwrap_err();
        assert!(err.to_string().contains("IPVS_SVC_ATTR_ADDR"), "{err}");
    }
    // Unknown family.
    let attrs = [
        SvcAttr::Af(AddressFamily::Other(99)),
        SvcAttr::Protocol(Protocol::Tcp),
        SvcAttr::Addr(vec![1; 16]),
        SvcAttr::Port(80),
    ];
    assert!(ServiceKey::from_attrs(&attrs).is_err());
    // Neither fwmark nor a complete tuple.
    let attrs = [SvcAttr::Af(AddressFamily::Inet), SvcAttr::Port(80)];
    assert!(ServiceKey::from_attrs(&attrs).is_err());
    // A 4-byte v4 address (moby/ipvs style) is accepted.
    let attrs = [
        SvcAttr::Af(AddressFamily::Inet),
        SvcAttr::Protocol(Protocol::Sctp),
        SvcAttr::Addr(vec![10, 0, 0, 1]),
        SvcAttr::Port(80),
    ];
    assert_eq!(
        ServiceKey::from_attrs(&attrs).unwrap(),
        ServiceKey::Tuple {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            protocol: Protocol::Sctp,
            port: 80
        }
    );
}

#[test]
fn service_dump_and_single_get_requests() {
    let dump = IpvsMessage::dump_services();
    assert!(dump.is_dump_request());
    assert_eq!(emit(&dump), genl(IPVS_CMD_GET_SERVICE, &[]));
    let get = IpvsMessage::get_service(&tcp_v4_key());
    assert!(!get.is_dump_request());
    assert_eq!(get.cmd, IpvsCmd::GetService);
    assert_eq!(
        ServiceKey::from_attrs(get.service_attrs().unwrap()).unwrap(),
        tcp_v4_key()
    );
}

#[test]
fn value_enums_round_trip_through_integers() {
    for v in [6u16, 17, 132, 1] {
        assert_eq!(u16::from(Protocol::from(v)), v);
    }
    assert_eq!(Protocol::from(1), Protocol::Other(1));
    for v in 0u32..6 {
        assert_eq!(u32::from(ForwardMethod::from(v)), v);
    }
    assert_eq!(ForwardMethod::from(3), ForwardMethod::DirectRoute);
    for v in [2u16, 10, 0] {
        assert_eq!(u16::from(AddressFamily::from(v)), v);
    }
    for v in 0u8..=255 {
        assert_eq!(u8::from(IpvsCmd::from(v)), v);
    }
    for v in 0u8..4 {
        assert_eq!(u8::from(TunnelType::from(v)), v);
    }
    assert_eq!(IP_VS_SVC_F_SCHED_MH_PORT, IP_VS_SVC_F_SCHED_SH_PORT);
    assert_eq!(IP_VS_SVC_F_SCHED_MH_FALLBACK, 0x8);
}
