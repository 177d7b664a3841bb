//! Golden tests against captures of ipvsadm 1.31 (libipvs over libnl) on a
//! real kernel, recorded by `hack/capture-fixtures.sh` into
//! `tests/fixtures/<name>.txt`.
//!
//! For every fixture: every IPVS message (both directions) parses, holds no
//! `Other` attribute, and re-emits to its captured bytes; every request
//! equals the value our builders produce for the same operation, written
//! out below, and emitting that value gives the captured bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kipvs_fixtures::{Captured, Direction, Fixture};
use kipvs_packet_ipvs::*;
use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::GenlHeader;

const DEFAULT_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
/// `GENL_ID_CTRL`: the family lookup; types below it are NOOP/ERROR/DONE.
const GENL_ID_CTRL: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const EEXIST: i32 = 17;

/// `KIPVS_IPVS_FIXTURES=<dir>` checks a fresh capture before it is copied in.
fn fixtures_dir() -> String {
    std::env::var("KIPVS_IPVS_FIXTURES").unwrap_or_else(|_| DEFAULT_FIXTURES.to_owned())
}

fn parse(payload: &[u8]) -> IpvsMessage {
    let header = GenlHeader::parse(payload).expect("genl header");
    assert_eq!(header.version, IPVS_GENL_VERSION);
    IpvsMessage::parse_with_param(&payload[4..], header)
        .unwrap_or_else(|e| panic!("parse {payload:02x?}: {e}"))
}

fn emit(msg: &IpvsMessage) -> Vec<u8> {
    let mut out = vec![u8::from(msg.cmd), IPVS_GENL_VERSION, 0, 0];
    let mut body = vec![0; msg.buffer_len()];
    msg.emit(&mut body);
    out.extend(body);
    out
}

fn is_ipvs(m: &Captured) -> bool {
    m.nlmsg_type > GENL_ID_CTRL
}

fn stats_typed(attrs: &[StatsAttr]) -> bool {
    !attrs.iter().any(|a| matches!(a, StatsAttr::Other(_)))
}

fn stats64_typed(attrs: &[Stats64Attr]) -> bool {
    !attrs.iter().any(|a| matches!(a, Stats64Attr::Other(_)))
}

/// No `Other` anywhere we claim typed support.
fn assert_fully_typed(msg: &IpvsMessage) {
    for attr in &msg.attrs {
        let ok = match attr {
            IpvsCmdAttr::Other(_) => false,
            IpvsCmdAttr::Service(nest) => nest.attrs.iter().all(|a| match a {
                SvcAttr::Other(_) => false,
                SvcAttr::Stats(s) => stats_typed(s),
                SvcAttr::Stats64(s) => stats64_typed(s),
                _ => true,
            }),
            IpvsCmdAttr::Dest(nest) => nest.attrs.iter().all(|a| match a {
                DestAttr::Other(_) => false,
                DestAttr::Stats(s) => stats_typed(s),
                DestAttr::Stats64(s) => stats64_typed(s),
                _ => true,
            }),
            _ => true,
        };
        assert!(ok, "untyped attribute in {msg:?}");
    }
}

/// Loads `name`, checks every IPVS message, compares the requests with
/// `expected` and returns every IPVS message in capture order.
fn check(name: &str, expected: &[IpvsMessage]) -> Vec<(Direction, u16, IpvsMessage)> {
    let fixture = Fixture::load(fixtures_dir(), name);
    let mut all = Vec::new();
    for m in fixture.messages.iter().filter(|m| is_ipvs(m)) {
        let msg = parse(&m.payload);
        assert_fully_typed(&msg);
        assert_eq!(emit(&msg), m.payload, "{name}: re-emit of {msg:?}");
        all.push((m.direction, m.nlmsg_flags, msg));
    }
    let requests: Vec<_> = all
        .iter()
        .filter(|(d, ..)| *d == Direction::ToKernel)
        .collect();
    assert_eq!(
        requests.len(),
        expected.len(),
        "{name}: request count; got {requests:#?}"
    );
    let captured: Vec<_> = fixture.requests().filter(|m| is_ipvs(m)).collect();
    for ((_, flags, parsed), (want, raw)) in requests.iter().zip(expected.iter().zip(captured)) {
        assert_eq!(want, parsed, "{name}");
        assert_eq!(emit(want), raw.payload, "{name}: bytes of {want:?}");
        assert_eq!(
            want.is_dump_request(),
            flags & NLM_F_DUMP == NLM_F_DUMP,
            "{name}: dump flag of {want:?}"
        );
    }
    all
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn tcp_v4() -> ServiceKey {
    ServiceKey::Tuple {
        addr: v4(10, 96, 0, 10),
        protocol: Protocol::Tcp,
        port: 80,
    }
}

fn tcp_v6() -> ServiceKey {
    ServiceKey::Tuple {
        addr: v6("fd00::10"),
        protocol: Protocol::Tcp,
        port: 80,
    }
}

fn udp_persistent() -> Service {
    let key = ServiceKey::Tuple {
        addr: v4(10, 96, 0, 10),
        protocol: Protocol::Udp,
        port: 53,
    };
    let mut svc = Service::new(key, "wrr");
    svc.flags = ServiceFlags::PERSISTENT;
    svc.timeout = 600;
    svc
}

fn sctp_mh() -> Service {
    let key = ServiceKey::Tuple {
        addr: v4(10, 96, 0, 11),
        protocol: Protocol::Sctp,
        port: 9000,
    };
    let mut svc = Service::new(key, "mh");
    svc.flags = ServiceFlags(IP_VS_SVC_F_SCHED_MH_FALLBACK | IP_VS_SVC_F_SCHED_MH_PORT);
    svc
}

fn fwmark() -> ServiceKey {
    ServiceKey::Fwmark {
        af: AddressFamily::Inet,
        mark: 100,
    }
}

fn masq(addr: IpAddr, port: u16, weight: u32) -> Destination {
    let mut d = Destination::new(addr, port);
    d.weight = weight;
    d
}

fn dest_thresholds() -> Destination {
    let mut d = masq(v4(10, 244, 1, 3), 8080, 2);
    d.upper_threshold = 100;
    d.lower_threshold = 10;
    d
}

/// ipvsadm starts every run with `ipvs_init()` -> `ipvs_getinfo()`.
fn info() -> IpvsMessage {
    IpvsMessage::get_info()
}

#[test]
fn new_service_tcp_v4() {
    check(
        "new_service_tcp_v4",
        &[
            info(),
            IpvsMessage::new_service(&Service::new(tcp_v4(), "rr")),
        ],
    );
}

#[test]
fn new_service_udp_persistent() {
    check(
        "new_service_udp_persistent",
        &[info(), IpvsMessage::new_service(&udp_persistent())],
    );
}

#[test]
fn new_service_sctp_mh_flags() {
    check(
        "new_service_sctp_mh_flags",
        &[info(), IpvsMessage::new_service(&sctp_mh())],
    );
}

#[test]
fn new_service_tcp_v6() {
    let svc = Service::new(tcp_v6(), "rr");
    assert_eq!(svc.netmask, 128);
    check(
        "new_service_tcp_v6",
        &[info(), IpvsMessage::new_service(&svc)],
    );
}

#[test]
fn new_service_fwmark() {
    check(
        "new_service_fwmark",
        &[
            info(),
            IpvsMessage::new_service(&Service::new(fwmark(), "rr")),
        ],
    );
}

#[test]
fn new_service_exists() {
    check(
        "new_service_exists",
        &[
            info(),
            IpvsMessage::new_service(&Service::new(tcp_v4(), "rr")),
        ],
    ); // The kernel's answer is an NLMSG_ERROR carrying -EEXIST.
    let fixture = Fixture::load(fixtures_dir(), "new_service_exists");
    let codes: Vec<i32> = fixture
        .replies()
        .filter(|m| m.nlmsg_type == NLMSG_ERROR)
        .map(|m| i32::from_ne_bytes(m.payload[..4].try_into().unwrap()))
        .collect();
    assert!(codes.contains(&-EEXIST), "{codes:?}");
}

#[test]
fn set_service() {
    check(
        "set_service",
        &[
            info(),
            IpvsMessage::set_service(&Service::new(tcp_v4(), "wrr")),
        ],
    );
}

#[test]
fn del_service() {
    check(
        "del_service",
        &[info(), IpvsMessage::del_service(&tcp_v4())],
    );
}

#[test]
fn new_dest_v4() {
    check(
        "new_dest_v4",
        &[
            info(),
            IpvsMessage::new_dest(&tcp_v4(), &masq(v4(10, 244, 1, 2), 8080, 1)),
        ],
    );
}

#[test]
fn new_dest_thresholds() {
    check(
        "new_dest_thresholds",
        &[info(), IpvsMessage::new_dest(&tcp_v4(), &dest_thresholds())],
    );
}

#[test]
fn new_dest_v6() {
    check(
        "new_dest_v6",
        &[
            info(),
            IpvsMessage::new_dest(&tcp_v6(), &masq(v6("fd00:244::2"), 8080, 1)),
        ],
    );
}

#[test]
fn set_dest() {
    check(
        "set_dest",
        &[
            info(),
            IpvsMessage::set_dest(&tcp_v4(), &masq(v4(10, 244, 1, 2), 8080, 0)),
        ],
    );
}

#[test]
fn del_dest() {
    check(
        "del_dest",
        &[
            info(),
            IpvsMessage::del_dest(&tcp_v4(), v4(10, 244, 1, 2), 8080),
        ],
    );
}

#[test]
fn set_config() {
    let timeouts = Timeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    };
    check("set_config", &[info(), IpvsMessage::set_config(&timeouts)]);
}

#[test]
fn get_config() {
    let all = check("get_config", &[info(), IpvsMessage::get_config()]);
    let reply = all
        .iter()
        .find(|(d, _, m)| *d == Direction::FromKernel && m.cmd == IpvsCmd::SetConfig);
    let (.., reply) = reply.expect("SET_CONFIG reply");
    assert_eq!(
        reply.timeouts().unwrap(),
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
}

#[test]
fn get_info() {
    let all = check("get_info", &[info()]);
    let (.., reply) = all
        .iter()
        .find(|(d, ..)| *d == Direction::FromKernel)
        .expect("reply");
    assert_eq!(reply.cmd, IpvsCmd::SetInfo);
    let info = reply.info().unwrap();
    assert_eq!(info.version_triple(), (1, 2, 1));
    assert!(info.conn_tab_size.is_power_of_two(), "{info:?}");
}

#[test]
fn zero() {
    check("zero", &[info(), IpvsMessage::zero(None)]);
}

#[test]
fn flush() {
    check("flush", &[info(), IpvsMessage::flush()]);
}

/// Replies of a dump, each with the key of the request it answers.
fn replies_by_request(all: &[(Direction, u16, IpvsMessage)]) -> Vec<(IpvsMessage, IpvsMessage)> {
    let mut out = Vec::new();
    let mut current = None;
    for (direction, _, msg) in all {
        match direction {
            Direction::ToKernel => current = Some(msg.clone()),
            Direction::FromKernel => {
                out.push((current.clone().expect("reply before request"), msg.clone()))
            }
        }
    }
    out
}

/// `ipvsadm -Ln -t 10.96.0.10:80`: ipvsadm 1.31 sends no GET_SERVICE here,
/// only GET_INFO and the GET_DEST dump of that service, so this fixture
/// checks the key-only SERVICE nest of `dump_dests` and a dest dump part.
#[test]
fn get_service_single() {
    let all = check(
        "get_service_single",
        &[info(), IpvsMessage::dump_dests(&tcp_v4())],
    );
    let dests: Vec<Destination> = replies_by_request(&all)
        .iter()
        .filter(|(req, _)| req.cmd == IpvsCmd::GetDest)
        .map(|(_, reply)| {
            assert_eq!(reply.cmd, IpvsCmd::NewDest);
            reply.destination().unwrap()
        })
        .collect();
    assert_eq!(dests.len(), 1);
    let mut dest = dests[0].clone();
    assert!(dest.stats.is_some());
    dest.stats = None;
    assert_eq!(dest, masq(v4(10, 244, 1, 2), 8080, 1));
}

#[test]
fn list_services_and_dests() {
    let all = check("list_services_and_dests", &list_requests());
    let pairs = replies_by_request(&all);
    let mut services: Vec<Service> = pairs
        .iter()
        .filter(|(req, _)| req.cmd == IpvsCmd::GetService)
        .map(|(_, reply)| {
            assert_eq!(reply.cmd, IpvsCmd::NewService);
            reply.service().unwrap()
        })
        .collect();
    for svc in &mut services {
        assert!(svc.stats.is_some(), "dumps carry stats: {svc:?}");
        svc.stats = None;
    }
    let mut want = vec![
        Service::new(tcp_v4(), "rr"),
        Service::new(tcp_v6(), "rr"),
        udp_persistent(),
        sctp_mh(),
        Service::new(fwmark(), "rr"),
    ];
    let order = |s: &Service| format!("{:?}", s.key);
    services.sort_by_key(order);
    want.sort_by_key(order);
    assert_eq!(services, want);

    let mut dests: Vec<(ServiceKey, Destination)> = pairs
        .iter()
        .filter(|(req, _)| req.cmd == IpvsCmd::GetDest)
        .map(|(req, reply)| {
            let key = ServiceKey::from_attrs(req.service_attrs().unwrap()).unwrap();
            let mut d = reply.destination().unwrap();
            assert!(d.stats.is_some());
            d.stats = None;
            (key, d)
        })
        .collect();
    dests.sort_by_key(|(k, d)| format!("{k:?}{:?}", d.addr));
    assert_eq!(
        dests,
        vec![
            (tcp_v4(), masq(v4(10, 244, 1, 2), 8080, 1)),
            (tcp_v4(), dest_thresholds()),
            (tcp_v6(), masq(v6("fd00:244::2"), 8080, 1)),
        ]
    );
}

/// ipvsadm -Ln: GET_INFO, the service dump, then one GET_DEST dump per
/// service in the order of libipvs `ipvs_cmp_services` (fwmark, family,
/// protocol, address, port), which ipvsadm sorts by before listing.
fn list_requests() -> Vec<IpvsMessage> {
    let udp53 = udp_persistent().key;
    let sctp = sctp_mh().key;
    vec![
        info(),
        IpvsMessage::dump_services(),
        IpvsMessage::dump_dests(&tcp_v4()),
        IpvsMessage::dump_dests(&udp53),
        IpvsMessage::dump_dests(&sctp),
        IpvsMessage::dump_dests(&tcp_v6()),
        IpvsMessage::dump_dests(&fwmark()),
    ]
}
