//! The ipset message: `nfgenmsg` followed by attributes.

use netlink_packet_core::{
    DecodeError, Emitable, ErrorContext, NetlinkDeserializable, NetlinkHeader, NetlinkSerializable,
    NlasIterator, ParseableParametrized, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};

use crate::{attribute::IpsetAttr, cmd::IpsetCmd, constants::*};

/// One ipset request or reply: the payload after the `nlmsghdr`.
///
/// On the wire: `nlmsg_type = (NFNL_SUBSYS_IPSET << 8) | cmd`, then
/// `struct nfgenmsg { family, version = NFNETLINK_V0, res_id = 0 }`, then the
/// attributes. The kernel ignores `nfgen_family` for ipset; the `ipset`
/// tool sends `AF_INET` (2) in every request and the kernel echoes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsetMessage {
    pub cmd: IpsetCmd,
    /// `nfgenmsg.nfgen_family`.
    pub family: u8,
    pub attrs: Vec<IpsetAttr>,
}

/// `AF_INET`, what libipset's `ipset_mnl_fill_hdr` puts in `nfgen_family`.
pub const NFGEN_FAMILY_DEFAULT: u8 = 2;

impl IpsetMessage {
    /// A message with the tool's `nfgen_family` and the given attributes.
    pub fn new(cmd: IpsetCmd, attrs: Vec<IpsetAttr>) -> Self {
        Self {
            cmd,
            family: NFGEN_FAMILY_DEFAULT,
            attrs,
        }
    }

    /// The `nlmsg_type` of this message.
    pub fn nlmsg_type(&self) -> u16 {
        (u16::from(NFNL_SUBSYS_IPSET) << 8) | u16::from(u8::from(self.cmd))
    }

    /// The `nlmsg_flags` the `ipset` tool (libipset 7.x) puts on this request,
    /// as captured from `ipset` 7.17:
    /// - PROTOCOL, TYPE, HEADER, GET_BYNAME, GET_BYINDEX: `REQUEST`;
    /// - LIST, SAVE: `REQUEST|ACK|DUMP`;
    /// - CREATE: `REQUEST|ACK|EXCL|CREATE`;
    /// - ADD, DEL, DESTROY: `REQUEST|ACK|EXCL`;
    /// - FLUSH, RENAME, SWAP, TEST: `REQUEST|ACK`.
    ///
    /// `NLM_F_EXCL` is what turns "already exists" / "does not exist" into
    /// `IPSET_ERR_EXIST`: the kernel's `flag_exist()` sets `IPSET_FLAG_EXIST`
    /// (the tool's `-exist`) exactly when it is absent. Drop it for
    /// idempotent CREATE/ADD/DEL.
    pub fn nlmsg_flags(&self) -> u16 {
        match self.cmd {
            IpsetCmd::List | IpsetCmd::Save => NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP,
            IpsetCmd::Create => NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE,
            IpsetCmd::Add | IpsetCmd::Del | IpsetCmd::Destroy => {
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL
            }
            IpsetCmd::Flush | IpsetCmd::Rename | IpsetCmd::Swap | IpsetCmd::Test => {
                NLM_F_REQUEST | NLM_F_ACK
            }
            _ => NLM_F_REQUEST,
        }
    }

    /// Parses the payload (from `nfgenmsg` on) of a message whose
    /// `nlmsg_type` is known.
    pub fn parse(nlmsg_type: u16, payload: &[u8]) -> Result<Self, DecodeError> {
        let subsys = (nlmsg_type >> 8) as u8;
        if subsys != NFNL_SUBSYS_IPSET {
            return Err(format!(
                "nlmsg_type {nlmsg_type:#06x} belongs to nfnetlink subsystem {subsys}, not ipset ({NFNL_SUBSYS_IPSET})"
            )
            .into());
        }
        let cmd = IpsetCmd::from(nlmsg_type as u8);
        if payload.len() < NFGENMSG_LEN {
            return Err(DecodeError::invalid_buffer(
                "nfgenmsg",
                payload.len(),
                NFGENMSG_LEN,
            ));
        }
        let family = payload[0];
        let version = payload[1];
        let res_id = u16::from_be_bytes([payload[2], payload[3]]);
        if version != NFNETLINK_V0 || res_id != 0 {
            return Err(format!(
                "nfgenmsg version {version} res_id {res_id}: ipset uses NFNETLINK_V0 and res_id 0"
            )
            .into());
        }
        let mut attrs = Vec::new();
        for nla in NlasIterator::new(&payload[NFGENMSG_LEN..]) {
            let nla = nla.with_context(|| format!("invalid attribute in ipset {cmd} message"))?;
            attrs.push(
                IpsetAttr::parse_with_param(&nla, cmd)
                    .with_context(|| format!("invalid attribute in ipset {cmd} message"))?,
            );
        }
        Ok(Self { cmd, family, attrs })
    }

    /// The payload bytes (from `nfgenmsg` on).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buffer = vec![0; Emitable::buffer_len(self)];
        Emitable::emit(self, &mut buffer);
        buffer
    }
}

impl Emitable for IpsetMessage {
    fn buffer_len(&self) -> usize {
        NFGENMSG_LEN + self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        buffer[0] = self.family;
        buffer[1] = NFNETLINK_V0;
        buffer[2..4].copy_from_slice(&0u16.to_be_bytes());
        self.attrs.as_slice().emit(&mut buffer[NFGENMSG_LEN..]);
    }
}

impl NetlinkSerializable for IpsetMessage {
    fn message_type(&self) -> u16 {
        self.nlmsg_type()
    }

    fn buffer_len(&self) -> usize {
        Emitable::buffer_len(self)
    }

    fn serialize(&self, buffer: &mut [u8]) {
        Emitable::emit(self, buffer)
    }
}

impl NetlinkDeserializable for IpsetMessage {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        Self::parse(header.message_type, payload)
    }
}

/// Lets `NetlinkMessage::from(ipset_message)` build the full netlink message.
impl From<IpsetMessage> for netlink_packet_core::NetlinkPayload<IpsetMessage> {
    fn from(message: IpsetMessage) -> Self {
        netlink_packet_core::NetlinkPayload::InnerMessage(message)
    }
}
