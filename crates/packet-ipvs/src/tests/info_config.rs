use std::net::{IpAddr, Ipv4Addr};

use super::support::*;
use crate::*;

#[test]
fn get_info_reply_uses_info_attribute_numbers() {
    // ip_vs_genl_get_cmd answers GET_INFO with SET_INFO and top-level
    // IPVS_INFO_ATTR_VERSION (1) / CONN_TAB_SIZE (2), which would be
    // SERVICE / DEST in any other command.
    let raw = genl(
        IPVS_CMD_SET_INFO,
        &[
            nla(IPVS_INFO_ATTR_VERSION, &u32_ne(0x010201)),
            nla(IPVS_INFO_ATTR_CONN_TAB_SIZE, &u32_ne(4096)),
        ],
    );
    let expected = IpvsMessage::new(
        IpvsCmd::SetInfo,
        vec![
            IpvsCmdAttr::InfoVersion(0x010201),
            IpvsCmdAttr::InfoConnTabSize(4096),
        ],
    );
    assert_golden(&raw, &expected);
    let info = expected.info().unwrap();
    assert_eq!(
        info,
        Info {
            version: 0x010201,
            conn_tab_size: 4096
        }
    );
    assert_eq!(info.version_triple(), (1, 2, 1));
    assert_eq!(emit(&IpvsMessage::get_info()), genl(IPVS_CMD_GET_INFO, &[]));
}

#[test]
fn config_request_and_reply() {
    let timeouts = Timeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    };
    let attrs = [
        nla(IPVS_CMD_ATTR_TIMEOUT_TCP, &u32_ne(900)),
        nla(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, &u32_ne(120)),
        nla(IPVS_CMD_ATTR_TIMEOUT_UDP, &u32_ne(300)),
    ];
    assert_golden(
        &genl(IPVS_CMD_SET_CONFIG, &attrs),
        &IpvsMessage::set_config(&timeouts),
    );
    // The GET_CONFIG reply has the same shape.
    assert_eq!(
        parse(&genl(IPVS_CMD_SET_CONFIG, &attrs))
            .timeouts()
            .unwrap(),
        timeouts
    );
    assert_eq!(
        emit(&IpvsMessage::get_config()),
        genl(IPVS_CMD_GET_CONFIG, &[])
    );
    assert!(IpvsMessage::get_config().timeouts().is_err());
}

#[test]
fn zero_and_flush() {
    assert_eq!(emit(&IpvsMessage::flush()), genl(IPVS_CMD_FLUSH, &[]));
    assert_eq!(emit(&IpvsMessage::zero(None)), genl(IPVS_CMD_ZERO, &[]));
    let key = ServiceKey::Tuple {
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        protocol: Protocol::Udp,
        port: 53,
    };
    let zero = IpvsMessage::zero(Some(&key));
    assert_eq!(zero.cmd, IpvsCmd::Zero);
    assert_eq!(
        ServiceKey::from_attrs(zero.service_attrs().unwrap()).unwrap(),
        key
    );
}

#[test]
fn info_and_service_accessors_report_missing_data() {
    assert!(IpvsMessage::flush().info().is_err());
    assert!(IpvsMessage::flush().service().is_err());
    assert!(IpvsMessage::flush().destination().is_err());
}

#[test]
fn full_netlink_round_trip_with_resolved_family_id() {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NLM_F_ACK, NLM_F_REQUEST};
    use netlink_packet_generic::GenlMessage;

    let key = ServiceKey::Tuple {
        addr: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1)),
        protocol: Protocol::Tcp,
        port: 443,
    };
    let mut genl = GenlMessage::from_payload(IpvsMessage::new_service(&Service::new(key, "rr")));
    genl.set_resolved_family_id(0x24);
    let mut msg = NetlinkMessage::new(NetlinkHeader::default(), genl.into());
    msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    assert_eq!(
        u16::from_ne_bytes([buf[4], buf[5]]),
        0x24,
        "nlmsg_type is the family id"
    );
    assert_eq!(&buf[16..18], &[IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION]);
    let back = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&buf).unwrap();
    assert_eq!(back, msg);
}
