//! Golden tests for the messages this crate builds with upstream types
//! (rtnetlink, conntrack): the bytes `ip` and `conntrack` sent to the real
//! kernel, captured by `hack/capture-fixtures.sh`, must parse into the
//! expected typed value and re-emit byte for byte; where our code builds the
//! same request, it must build the same message.

use std::net::IpAddr;

use kipvs_fixtures::{Captured, Direction, Fixture};
use netlink_packet_core::{NetlinkDeserializable, NetlinkHeader, NetlinkSerializable};
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{InfoKind, LinkAttribute, LinkInfo},
    AddressFamily, RouteNetlinkMessage,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// `NLMSG_ERROR`, `NLMSG_DONE` and the like are the funnel's business, not
/// the protocol's.
fn is_control(m: &Captured) -> bool {
    m.nlmsg_type < 16
}

fn parse<T: NetlinkDeserializable>(m: &Captured) -> T
where
    T::Error: std::fmt::Debug,
{
    let mut header = NetlinkHeader::default();
    header.message_type = m.nlmsg_type;
    header.flags = m.nlmsg_flags;
    T::deserialize(&header, &m.payload)
        .unwrap_or_else(|e| panic!("type {:#x}: {e:?}", m.nlmsg_type))
}

fn emit<T: NetlinkSerializable>(message: &T) -> Vec<u8> {
    let mut out = vec![0; message.buffer_len()];
    message.serialize(&mut out);
    out
}

fn route_fixtures() -> Vec<Fixture> {
    let all = Fixture::load_all(DIR);
    let route: Vec<Fixture> = all.into_iter().filter(|f| f.protocol == 0).collect();
    assert!(route.len() >= 5, "route fixtures missing in {DIR}");
    route
}

#[test]
fn every_captured_route_message_parses_and_requests_reemit_exactly() {
    for fixture in route_fixtures() {
        for message in fixture.messages.iter().filter(|m| !is_control(m)) {
            let parsed: RouteNetlinkMessage = parse(message);
            assert_eq!(
                parsed.message_type(),
                message.nlmsg_type,
                "{}",
                fixture.name
            );
            if message.direction == Direction::ToKernel {
                let expected = match &parsed {
                    RouteNetlinkMessage::NewLink(link) if !link.attributes.is_empty() => {
                        with_nul_terminated_kind(&message.payload, "dummy")
                    }
                    _ => message.payload.clone(),
                };
                assert_eq!(emit(&parsed), expected, "{}: {parsed:?}", fixture.name);
            }
        }
    }
}

/// The request that made the change: the last of its type, because `ip`
/// first probes the kernel with an empty RTM_NEWLINK.
fn the_request(fixture: &Fixture, nlmsg_type: u16) -> &Captured {
    fixture
        .requests()
        .filter(|m| m.nlmsg_type == nlmsg_type)
        .last()
        .unwrap_or_else(|| panic!("{}: no request of type {nlmsg_type:#x}", fixture.name))
}

/// `ip` writes IFLA_INFO_KIND without its terminating NUL (`addattr_l` with
/// `strlen`); netlink-packet-route writes it with one. The kernel compares
/// with `nla_strcmp`, which accepts both. Returns `bytes` with the kind
/// attribute's length grown by that one byte (the padding byte is already 0).
fn with_nul_terminated_kind(bytes: &[u8], kind: &str) -> Vec<u8> {
    let len = (4 + kind.len()) as u16;
    let mut needle = len.to_ne_bytes().to_vec();
    needle.extend_from_slice(&1u16.to_ne_bytes());
    needle.extend_from_slice(kind.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("IFLA_INFO_KIND");
    let mut out = bytes.to_vec();
    out[at..at + 2].copy_from_slice(&(len + 1).to_ne_bytes());
    out
}

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;

#[test]
fn ip_link_add_dummy_is_the_message_we_build() {
    let fixture = Fixture::load(DIR, "link_add_dummy");
    let captured = the_request(&fixture, RTM_NEWLINK);
    let parsed: RouteNetlinkMessage = parse(captured);
    let RouteNetlinkMessage::NewLink(link) = &parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(
        link.attributes,
        vec![
            LinkAttribute::IfName("kube-ipvs0".into()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Dummy)]),
        ]
    );
    // NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE, as we send it.
    assert_eq!(captured.nlmsg_flags, 0x605);
    let ours = RouteNetlinkMessage::NewLink(rtnetlink::LinkDummy::new("kube-ipvs0").build());
    assert_eq!(ours, parsed);
    assert_eq!(
        emit(&ours),
        with_nul_terminated_kind(&captured.payload, "dummy")
    );
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ip_addr_add_and_del_carry_the_host_address_we_bind() {
    for (name, nlmsg_type, ip, prefix) in [
        ("addr_add_v4", RTM_NEWADDR, addr("10.96.0.10"), 32),
        ("addr_add_v6", RTM_NEWADDR, addr("fd00::10"), 128),
        ("addr_del_v4", RTM_DELADDR, addr("10.96.0.10"), 32),
    ] {
        let fixture = Fixture::load(DIR, name);
        let captured = the_request(&fixture, nlmsg_type);
        let parsed: RouteNetlinkMessage = parse(captured);
        let message: &AddressMessage = match &parsed {
            RouteNetlinkMessage::NewAddress(m) | RouteNetlinkMessage::DelAddress(m) => m,
            other => panic!("{name}: {other:?}"),
        };
        let family = if ip.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        assert_eq!(
            (message.header.family, message.header.prefix_len),
            (family, prefix),
            "{name}"
        );
        // The index is whatever kube-ipvs0 got in the capture run.
        let ours = crate::links::host_address(message.header.index, ip);
        assert_eq!(ours.header, message.header, "{name}");
        // `ip` puts IFA_LOCAL before IFA_ADDRESS for IPv4; the kernel reads
        // both by type, so compare them as sets.
        let mut theirs = message.attributes.clone();
        let mut mine = ours.attributes.clone();
        let key = |a: &AddressAttribute| format!("{a:?}");
        theirs.sort_by_key(key);
        mine.sort_by_key(key);
        assert_eq!(mine, theirs, "{name}");
        if ip.is_ipv4() {
            assert!(theirs.contains(&AddressAttribute::Local(ip)), "{name}");
        }
        assert!(theirs.contains(&AddressAttribute::Address(ip)), "{name}");
    }
}

mod conntrack {
    use netlink_packet_netfilter::{
        conntrack::{ConntrackAttribute, ConntrackMessage},
        NetfilterMessage, NetfilterMessageInner,
    };

    use super::*;
    use crate::conntrack::{flow_of, tuple_attributes};
    use crate::{Flow, FlowTuple};

    const IPCTNL_MSG_CT_DELETE: u16 = (1 << 8) | 2;

    fn conntrack_messages(fixture: &Fixture) -> Vec<(&Captured, NetfilterMessage)> {
        fixture
            .messages
            .iter()
            .filter(|m| !is_control(m))
            .map(|m| (m, parse::<NetfilterMessage>(m)))
            .collect()
    }

    #[test]
    fn every_captured_conntrack_message_parses_and_requests_reemit_exactly() {
        for name in ["conntrack_list_udp", "conntrack_delete"] {
            let fixture = Fixture::load(DIR, name);
            assert_eq!(fixture.protocol, 12, "{name}");
            for (captured, parsed) in conntrack_messages(&fixture) {
                assert!(
                    matches!(parsed.inner, NetfilterMessageInner::Conntrack(_)),
                    "{name}: {parsed:?}"
                );
                if captured.direction == Direction::ToKernel {
                    assert_eq!(emit(&parsed), captured.payload, "{name}: {parsed:?}");
                }
            }
        }
    }

    #[test]
    fn a_dumped_udp_flow_reads_as_the_flow_the_capture_made() {
        let fixture = Fixture::load(DIR, "conntrack_list_udp");
        let flows: Vec<Flow> = conntrack_messages(&fixture)
            .iter()
            .filter(|(m, _)| m.direction == Direction::FromKernel)
            .filter_map(|(_, parsed)| flow_of(parsed))
            .collect();
        assert_eq!(flows.len(), 1, "{flows:?}");
        let flow = flows[0];
        let localhost = addr("127.0.0.1");
        assert_eq!(flow.protocol, 17);
        assert_eq!(
            (flow.original.src, flow.original.dst, flow.original.dport),
            (localhost, localhost, 9999)
        );
        assert_eq!(
            flow.reply,
            FlowTuple {
                src: localhost,
                dst: localhost,
                sport: 9999,
                dport: flow.original.sport,
            }
        );
    }

    #[test]
    fn conntrack_delete_names_the_flow_by_the_original_tuple_we_send() {
        let fixture = Fixture::load(DIR, "conntrack_delete");
        let messages = conntrack_messages(&fixture);
        let (captured, delete) = messages
            .iter()
            .find(|(m, _)| m.nlmsg_type == IPCTNL_MSG_CT_DELETE)
            .expect("a CT_DELETE request");
        assert_eq!(
            captured.nlmsg_flags & 0x4,
            0x4,
            "the delete asks for an ack"
        );
        let NetfilterMessageInner::Conntrack(ConntrackMessage::Delete(attributes)) = &delete.inner
        else {
            panic!("{delete:?}")
        };
        let original = attributes
            .iter()
            .find_map(|a| match a {
                ConntrackAttribute::CtaTupleOrig(t) => Some(t.clone()),
                _ => None,
            })
            .expect("CTA_TUPLE_ORIG");
        // The flow the tool found in its dump, deleted by the tuple we build.
        let dumped = messages
            .iter()
            .find_map(|(_, m)| flow_of(m))
            .expect("the dumped flow");
        assert_eq!(
            tuple_attributes(dumped.protocol, &dumped.original),
            original
        );
    }
}
