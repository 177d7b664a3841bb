use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::support::*;
use crate::*;

fn key() -> ServiceKey {
    ServiceKey::Tuple {
        addr: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10)),
        protocol: Protocol::Tcp,
        port: 80,
    }
}

fn key_only_service_nest() -> Vec<u8> {
    nested(
        IPVS_CMD_ATTR_SERVICE | F_NESTED,
        &[
            nla(IPVS_SVC_ATTR_AF, &u16_ne(2)),
            nla(IPVS_SVC_ATTR_PROTOCOL, &u16_ne(6)),
            nla(IPVS_SVC_ATTR_ADDR, &addr4([10, 96, 0, 10])),
            nla(IPVS_SVC_ATTR_PORT, &80u16.to_be_bytes()),
            nla(IPVS_SVC_ATTR_SCHED_NAME, b"\0"),
            nla(IPVS_SVC_ATTR_FLAGS, &[u32_ne(0), u32_ne(!0)].concat()),
            nla(IPVS_SVC_ATTR_TIMEOUT, &u32_ne(0)),
            nla(IPVS_SVC_ATTR_NETMASK, &u32_ne(0xffff_ffff)),
        ],
    )
}

#[allow(clippy::too_many_arguments)]
fn dest_nest(af: u16, addr: Vec<u8>, port: u16, fwd: u32, weight: u32, u: u32, l: u32) -> Vec<u8> {
    nested(
        IPVS_CMD_ATTR_DEST | F_NESTED,
        &[
            nla(IPVS_DEST_ATTR_ADDR_FAMILY, &u16_ne(af)),
            nla(IPVS_DEST_ATTR_ADDR, &addr),
            nla(IPVS_DEST_ATTR_PORT, &port.to_be_bytes()),
            nla(IPVS_DEST_ATTR_FWD_METHOD, &u32_ne(fwd)),
            nla(IPVS_DEST_ATTR_WEIGHT, &u32_ne(weight)),
            nla(IPVS_DEST_ATTR_TUN_TYPE, &[0]),
            nla(IPVS_DEST_ATTR_TUN_PORT, &0u16.to_be_bytes()),
            nla(IPVS_DEST_ATTR_TUN_FLAGS, &u16_ne(0)),
            nla(IPVS_DEST_ATTR_U_THRESH, &u32_ne(u)),
            nla(IPVS_DEST_ATTR_L_THRESH, &u32_ne(l)),
        ],
    )
}

#[test]
fn new_dest_masq_with_thresholds() {
    let mut dest = Destination::new(IpAddr::V4(Ipv4Addr::new(10, 244, 1, 5)), 8080);
    dest.weight = 3;
    dest.upper_threshold = 100;
    dest.lower_threshold = 10;
    let raw = genl(
        IPVS_CMD_NEW_DEST,
        &[
            key_only_service_nest(),
            dest_nest(2, addr4([10, 244, 1, 5]), 8080, 0, 3, 100, 10),
        ],
    );
    let expected = IpvsMessage::new_dest(&key(), &dest);
    assert_golden(&raw, &expected);
    assert_eq!(parse(&raw).destination().unwrap(), dest);
}

#[test]
fn del_dest_sends_ipvsadm_defaults() {
    let raw = genl(
        IPVS_CMD_DEL_DEST,
        &[
            key_only_service_nest(),
            dest_nest(2, addr4([10, 244, 1, 5]), 8080, 3, 1, 0, 0),
        ],
    );
    let expected = IpvsMessage::del_dest(&key(), IpAddr::V4(Ipv4Addr::new(10, 244, 1, 5)), 8080);
    assert_golden(&raw, &expected);
}

#[test]
fn v6_dest_round_trips() {
    let v6: Ipv6Addr = "fd00:10:244::7".parse().unwrap();
    let mut dest = Destination::new(IpAddr::V6(v6), 443);
    dest.forward = ForwardMethod::Tunnel;
    let raw = genl(
        IPVS_CMD_SET_DEST,
        &[
            key_only_service_nest(),
            dest_nest(10, v6.octets().to_vec(), 443, 2, 1, 0, 0),
        ],
    );
    assert_golden(&raw, &IpvsMessage::set_dest(&key(), &dest));
    assert_eq!(parse(&raw).destination().unwrap().addr, IpAddr::V6(v6));
}

/// GET_DEST dump part as `ip_vs_genl_fill_dest` writes it (no nested flag,
/// ADDR_FAMILY last, counters and stats).
#[test]
fn kernel_dest_reply_parses_and_re_emits() {
    let raw = genl(
        IPVS_CMD_NEW_DEST,
        &[nested(
            IPVS_CMD_ATTR_DEST,
            &[
                nla(IPVS_DEST_ATTR_ADDR, &addr4([10, 244, 2, 9])),
                nla(IPVS_DEST_ATTR_PORT, &9376u16.to_be_bytes()),
                nla(IPVS_DEST_ATTR_FWD_METHOD, &u32_ne(0)),
                nla(IPVS_DEST_ATTR_WEIGHT, &u32_ne(2)),
                nla(IPVS_DEST_ATTR_TUN_TYPE, &[1]),
                nla(IPVS_DEST_ATTR_TUN_PORT, &6080u16.to_be_bytes()),
                nla(
                    IPVS_DEST_ATTR_TUN_FLAGS,
                    &u16_ne(IP_VS_TUNNEL_ENCAP_FLAG_CSUM),
                ),
                nla(IPVS_DEST_ATTR_U_THRESH, &u32_ne(0)),
                nla(IPVS_DEST_ATTR_L_THRESH, &u32_ne(0)),
                nla(IPVS_DEST_ATTR_ACTIVE_CONNS, &u32_ne(4)),
                nla(IPVS_DEST_ATTR_INACT_CONNS, &u32_ne(5)),
                nla(IPVS_DEST_ATTR_PERSIST_CONNS, &u32_ne(6)),
                nla(IPVS_DEST_ATTR_ADDR_FAMILY, &u16_ne(2)),
                nested(
                    IPVS_DEST_ATTR_STATS,
                    &[nla(IPVS_STATS_ATTR_CONNS, &u32_ne(11))],
                ),
            ],
        )],
    );
    let msg = parse(&raw);
    assert_eq!(emit(&msg), raw);
    let dest = msg.destination().unwrap();
    assert_eq!(dest.addr, IpAddr::V4(Ipv4Addr::new(10, 244, 2, 9)));
    assert_eq!(dest.port, 9376);
    assert_eq!(dest.forward, ForwardMethod::Masq);
    assert_eq!(dest.weight, 2);
    assert_eq!(
        (
            dest.active_conns,
            dest.inactive_conns,
            dest.persistent_conns
        ),
        (4, 5, 6)
    );
    assert_eq!(
        (dest.tun_type, dest.tun_port, dest.tun_flags),
        (TunnelType::Gue, 6080, 1)
    );
    assert_eq!(dest.stats.unwrap().conns, 11);
}

#[test]
fn dest_family_fallback_and_errors() {
    let base = |addr: Vec<u8>| vec![DestAttr::Addr(addr), DestAttr::Port(80)];
    // No ADDR_FAMILY: a 4-byte address is unambiguous.
    assert_eq!(
        Destination::from_attrs(&base(vec![10, 0, 0, 1]))
            .unwrap()
            .addr,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
    );
    // ... a 16-byte one is not.
    assert!(Destination::from_attrs(&base(vec![0; 16])).is_err());
    // Family and length disagree.
    let mut attrs = base(vec![10, 0, 0, 1]);
    attrs.push(DestAttr::AddrFamily(AddressFamily::Inet6));
    assert!(Destination::from_attrs(&attrs).is_err());
    // No address / no port.
    assert!(Destination::from_attrs(&[DestAttr::Port(1)]).is_err());
    assert!(Destination::from_attrs(&[DestAttr::Addr(vec![1, 2, 3, 4])]).is_err());
}

#[test]
fn dump_dests_carries_the_service_key() {
    let msg = IpvsMessage::dump_dests(&key());
    assert!(msg.is_dump_request());
    // libipvs ipvs_get_dests: AF + key only, no scheduler/flags/timeout/netmask.
    let service = nested(
        IPVS_CMD_ATTR_SERVICE | F_NESTED,
        &[
            nla(IPVS_SVC_ATTR_AF, &u16_ne(2)),
            nla(IPVS_SVC_ATTR_PROTOCOL, &u16_ne(6)),
            nla(IPVS_SVC_ATTR_ADDR, &addr4([10, 96, 0, 10])),
            nla(IPVS_SVC_ATTR_PORT, &80u16.to_be_bytes()),
        ],
    );
    assert_eq!(emit(&msg), genl(IPVS_CMD_GET_DEST, &[service]));
}
