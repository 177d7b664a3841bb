//! Generic-netlink family look-up (nlctrl `CTRL_CMD_GETFAMILY`), done through
//! the funnel on the family's own socket.
//!
//! The reply is read by [`FamilyLookup`], not by `netlink-packet-generic`'s
//! `GenlCtrl`: that parser decodes every attribute of the reply (operations,
//! multicast groups, policies) and panics on some malformed ones, while all
//! we need is the family id. [`FamilyLookup`] walks the attributes, keeps
//! `CTRL_ATTR_FAMILY_ID` and skips the rest, so a garbled reply is an error.

use netlink_packet_core::{
    DecodeError, Emitable, NlasIterator, ParseableParametrized, NLA_HEADER_SIZE,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

use crate::{Channel, ErrorClass, MessageKind, Request, Result};

/// `GENL_ID_CTRL`: nlctrl's fixed family id.
const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_NEWFAMILY`: the command of a GETFAMILY reply.
const CTRL_CMD_NEWFAMILY: u8 = 1;
/// `CTRL_CMD_GETFAMILY`.
const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (NUL-terminated string).
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// The nlctrl version `genl-ctrl` tools and `ipvsadm` send.
const CTRL_VERSION: u8 = 2;

/// A `CTRL_CMD_GETFAMILY` request by name, or its reply reduced to the
/// family id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct FamilyLookup {
    pub cmd: u8,
    /// The name asked for (requests only).
    pub name: Option<String>,
    /// `CTRL_ATTR_FAMILY_ID` of a reply.
    pub id: Option<u16>,
}

impl FamilyLookup {
    fn query(name: &str) -> FamilyLookup {
        FamilyLookup {
            cmd: CTRL_CMD_GETFAMILY,
            name: Some(name.to_owned()),
            id: None,
        }
    }

    fn name_len(&self) -> usize {
        self.name.as_ref().map_or(0, |name| name.len() + 1)
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

impl GenlFamily for FamilyLookup {
    fn family_name() -> &'static str {
        "nlctrl"
    }

    fn family_id(&self) -> u16 {
        GENL_ID_CTRL
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        CTRL_VERSION
    }
}

impl Emitable for FamilyLookup {
    fn buffer_len(&self) -> usize {
        match &self.name {
            Some(_) => align(NLA_HEADER_SIZE + self.name_len()),
            None => 0,
        }
    }

    fn emit(&self, buffer: &mut [u8]) {
        let Some(name) = &self.name else {
            return;
        };
        let len = NLA_HEADER_SIZE + self.name_len();
        buffer[..self.buffer_len()].fill(0);
        // A family name is at most GENL_NAMSIZ (16) bytes, so the length
        // always fits the attribute's u16.
        buffer[0..2].copy_from_slice(&(len as u16).to_ne_bytes());
        buffer[2..4].copy_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
        buffer[4..4 + name.len()].copy_from_slice(name.as_bytes());
    }
}

impl ParseableParametrized<[u8], GenlHeader> for FamilyLookup {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let mut id = None;
        for nla in NlasIterator::new(buf) {
            let nla = nla?;
            if nla.kind() == CTRL_ATTR_FAMILY_ID {
                let value: [u8; 2] = nla
                    .value()
                    .get(..2)
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| {
                        DecodeError::from(format!(
                            "CTRL_ATTR_FAMILY_ID of {} bytes, want 2",
                            nla.value().len()
                        ))
                    })?;
                id = Some(u16::from_ne_bytes(value));
            }
        }
        Ok(FamilyLookup {
            cmd: header.cmd,
            name: None,
            id,
        })
    }
}

/// Resolves a genl family name to its id; `Ok(None)` when the kernel has no
/// such family (for IPVS: the `ip_vs` module is not loaded and cannot be
/// auto-loaded).
pub(crate) async fn resolve_family(channel: &mut Channel, name: &str) -> Result<Option<u16>> {
    let query = GenlMessage::from_payload(FamilyLookup::query(name));
    match channel.request(Request::ack(query, 0)).await {
        Ok(replies) => Ok(replies.iter().find_map(|reply| reply.payload.id)),
        Err(e) if e.class() == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl MessageKind for GenlMessage<FamilyLookup> {
    fn kind(&self) -> &'static str {
        match self.payload.cmd {
            CTRL_CMD_GETFAMILY => "CTRL_GETFAMILY",
            CTRL_CMD_NEWFAMILY => "CTRL_NEWFAMILY",
            _ => "CTRL_OTHER",
        }
    }
}

#[cfg(test)]
mod tests {
    use kipvs_fixtures::{Direction, Fixture};
    use netlink_packet_core::{NetlinkDeserializable, NetlinkHeader, NetlinkMessage};

    use super::*;

    const IPVS_FIXTURES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../packet-ipvs/tests/fixtures");

    /// A nlctrl reply whose one attribute (type 8, `CTRL_ATTR_POLICY`) is
    /// an empty nest: `netlink-packet-generic` 0.5.0's `GenlCtrl` panics on
    /// it.
    const MALFORMED_POLICY: &str = "180000001000000001000000000000000100000004000800";

    /// Reads a nlctrl message (the bytes after `nlmsghdr`).
    fn parse_family_reply(payload: &[u8]) -> Result<FamilyLookup, DecodeError> {
        GenlMessage::<FamilyLookup>::parse_with_param(payload, GENL_ID_CTRL)
            .map(|message| message.payload)
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_malformed_policy_attribute_neither_panics_nor_yields_an_id() {
        let bytes = hex(MALFORMED_POLICY);
        let message = NetlinkMessage::<GenlMessage<FamilyLookup>>::deserialize(&bytes)
            .expect("attributes we do not read are skipped");
        match message.payload {
            netlink_packet_core::NetlinkPayload::InnerMessage(reply) => {
                assert_eq!(reply.payload.id, None);
                assert_eq!(reply.payload.cmd, CTRL_CMD_NEWFAMILY);
            }
            other => panic!("not a genl message: {other:?}"),
        }
    }

    #[test]
    fn a_malformed_attribute_is_a_decode_error() {
        // genl header, then an attribute claiming 200 bytes in 8.
        let mut payload = vec![CTRL_CMD_NEWFAMILY, 2, 0, 0];
        payload.extend_from_slice(&[200, 0, 1, 0, 0x10, 0, 0, 0]);
        assert!(parse_family_reply(&payload).is_err());
        // A family id of one byte.
        let mut payload = vec![CTRL_CMD_NEWFAMILY, 2, 0, 0];
        payload.extend_from_slice(&[5, 0, 1, 0, 0x10, 0, 0, 0]);
        let err = parse_family_reply(&payload).unwrap_err();
        assert!(err.to_string().contains("CTRL_ATTR_FAMILY_ID"), "{err}");
        // Shorter than the genl header.
        assert!(parse_family_reply(&[1, 2]).is_err());
    }

    #[test]
    fn reads_the_family_id_from_the_captured_reply() {
        let fixture = Fixture::load(IPVS_FIXTURES, "get_info");
        let reply = fixture
            .messages
            .iter()
            .find(|m| m.direction == Direction::FromKernel && m.nlmsg_type == GENL_ID_CTRL)
            .expect("the capture starts with the family look-up");
        let lookup = parse_family_reply(&reply.payload).unwrap();
        assert_eq!(lookup.cmd, CTRL_CMD_NEWFAMILY);
        // The id the capture's kernel gave IPVS (the type of its requests).
        let ipvs_type = fixture
            .messages
            .iter()
            .find(|m| m.direction == Direction::ToKernel && m.nlmsg_type != GENL_ID_CTRL)
            .unwrap()
            .nlmsg_type;
        assert_eq!(lookup.id, Some(ipvs_type));
    }

    #[test]
    fn the_query_asks_for_the_family_by_name_as_ipvsadm_does() {
        let fixture = Fixture::load(IPVS_FIXTURES, "get_info");
        let sent = &fixture.messages[0];
        assert_eq!(sent.direction, Direction::ToKernel);
        let mut query = GenlMessage::from_payload(FamilyLookup::query("IPVS"));
        query.finalize();
        let mut bytes = vec![0; netlink_packet_core::NetlinkSerializable::buffer_len(&query)];
        netlink_packet_core::NetlinkSerializable::serialize(&query, &mut bytes);
        // ipvsadm sends nlctrl version 1, we send 2; the rest is identical.
        assert_eq!(bytes[0], sent.payload[0]);
        assert_eq!(bytes[2..], sent.payload[2..]);
        let header = NetlinkHeader::default();
        let parsed = GenlMessage::<FamilyLookup>::deserialize(&header, &bytes).unwrap();
        assert_eq!(parsed.payload.cmd, CTRL_CMD_GETFAMILY);
    }
}
