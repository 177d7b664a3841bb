use netlink_packet_core::ParseableParametrized;
use netlink_packet_generic::GenlHeader;

use super::support::*;
use crate::*;

fn try_parse(raw: &[u8]) -> Result<IpvsMessage, netlink_packet_core::DecodeError> {
    let header = GenlHeader::parse(raw)?;
    IpvsMessage::parse_with_param(&raw[4..], header)
}

#[test]
fn unknown_attributes_become_other_and_round_trip() {
    let raw = genl(
        IPVS_CMD_NEW_DEST,
        &[
            nla(99, &[1, 2, 3]),
            nested(
                IPVS_CMD_ATTR_SERVICE,
                &[
                    nla(IPVS_SVC_ATTR_AF, &u16_ne(2)),
                    nla(42, &u32_ne(7)),
                    nested(IPVS_SVC_ATTR_STATS64, &[nla(20, &[9; 8])]),
                ],
            ),
            nested(IPVS_CMD_ATTR_DEST | F_NESTED, &[nla(77, b"future\0")]),
            nested(IPVS_CMD_ATTR_DAEMON, &[nla(1, &u32_ne(1))]),
        ],
    );
    let msg = parse(&raw);
    assert_eq!(emit(&msg), raw);
    assert!(
        matches!(&msg.attrs[0], IpvsCmdAttr::Other(nla) if netlink_packet_core::Nla::kind(nla) == 99)
    );
    let svc = msg.service_attrs().unwrap();
    assert!(matches!(svc[1], SvcAttr::Other(_)));
    assert!(matches!(&svc[2], SvcAttr::Stats64(s) if matches!(s[0], Stats64Attr::Other(_))));
    assert!(matches!(msg.dest_attrs().unwrap()[0], DestAttr::Other(_)));
    assert!(matches!(&msg.attrs[3], IpvsCmdAttr::Daemon(nest) if nest.attrs.len() == 1));
    // A PAD with a payload is not a PAD.
    let odd_pad = nested(IPVS_SVC_ATTR_STATS, &[nla(IPVS_STATS_ATTR_PAD, &[0; 4])]);
    let raw = genl(
        IPVS_CMD_NEW_SERVICE,
        &[nested(IPVS_CMD_ATTR_SERVICE, &[odd_pad])],
    );
    let msg = parse(&raw);
    assert!(
        matches!(&msg.service_attrs().unwrap()[0], SvcAttr::Stats(s) if matches!(s[0], StatsAttr::Other(_)))
    );
    assert_eq!(emit(&msg), raw);
}

#[test]
fn malformed_values_are_decode_errors() {
    let cases: Vec<Vec<u8>> = vec![
        // AF with 3 bytes.
        genl(
            1,
            &[nested(
                IPVS_CMD_ATTR_SERVICE,
                &[nla(IPVS_SVC_ATTR_AF, &[2, 0, 0])],
            )],
        ),
        // FLAGS with 4 bytes instead of 8.
        genl(
            1,
            &[nested(
                IPVS_CMD_ATTR_SERVICE,
                &[nla(IPVS_SVC_ATTR_FLAGS, &u32_ne(1))],
            )],
        ),
        // ADDR longer than the union.
        genl(
            1,
            &[nested(
                IPVS_CMD_ATTR_SERVICE,
                &[nla(IPVS_SVC_ATTR_ADDR, &[0; 20])],
            )],
        ),
        // u32 stats counter with 8 bytes.
        genl(
            1,
            &[nested(
                IPVS_CMD_ATTR_SERVICE,
                &[nested(IPVS_SVC_ATTR_STATS, &[nla(1, &u64_ne(1))])],
            )],
        ),
        // TUN_TYPE with 2 bytes.
        genl(
            5,
            &[nested(
                IPVS_CMD_ATTR_DEST,
                &[nla(IPVS_DEST_ATTR_TUN_TYPE, &[0, 0])],
            )],
        ),
        // Timeout with 2 bytes.
        genl(12, &[nla(IPVS_CMD_ATTR_TIMEOUT_TCP, &[1, 0])]),
        // Attribute claiming more bytes than there are.
        genl(1, &[vec![0x40, 0x00, 0x01, 0x00, 0, 0, 0, 0]]),
        // Attribute length below the header size.
        genl(1, &[vec![0x02, 0x00, 0x01, 0x00]]),
        // Trailing garbage shorter than an attribute header.
        genl(17, &[vec![0xff, 0xff]]),
    ];
    for raw in cases {
        assert!(try_parse(&raw).is_err(), "should fail: {raw:02x?}");
    }
    // Too short for the genl header.
    assert!(try_parse(&[1, 1]).is_err());
}

/// Every truncation and every single-byte corruption of valid messages
/// must yield Ok or Err, never a panic.
#[test]
fn truncated_and_corrupted_buffers_never_panic() {
    let key = ServiceKey::Tuple {
        addr: "fd00::1".parse().unwrap(),
        protocol: Protocol::Tcp,
        port: 80,
    };
    let mut dest = Destination::new("fd00::2".parse().unwrap(), 80);
    dest.weight = 5;
    let samples = [
        emit(&IpvsMessage::new_service(&Service::new(key, "rr"))),
        emit(&IpvsMessage::new_dest(&key, &dest)),
        emit(&IpvsMessage::set_config(&Timeouts {
            tcp: 1,
            tcp_fin: 2,
            udp: 3,
        })),
    ];
    let mut outcomes = (0usize, 0usize);
    for sample in &samples {
        for len in 0..sample.len() {
            match try_parse(&sample[..len]) {
                Ok(_) => outcomes.0 += 1,
                Err(_) => outcomes.1 += 1,
            }
        }
        for i in 0..sample.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut corrupt = sample.clone();
                corrupt[i] = value;
                if let Ok(msg) = try_parse(&corrupt) {
                    // Whatever parsed must also be readable without panics.
                    let _ = msg.service();
                    let _ = msg.destination();
                    let _ = emit(&msg);
                }
            }
        }
    }
    assert!(outcomes.1 > 0, "some truncations must be rejected");
    // A cut exactly between top-level attributes is still a valid message.
    assert!(outcomes.0 > 0);
}
