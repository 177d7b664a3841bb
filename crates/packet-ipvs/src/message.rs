//! The IPVS generic netlink payload: a command and its attributes.

use netlink_packet_core::{
    DecodeError, Emitable, ErrorContext, NlasIterator, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::{cmd::IpvsCmd, cmd_attr::IpvsCmdAttr};

/// `IPVS_GENL_NAME`: resolve the family id with nlctrl `GETFAMILY`.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

/// One IPVS message, used as `NetlinkMessage<GenlMessage<IpvsMessage>>`.
///
/// Build requests with the constructors in [`crate::request`]
/// (`IpvsMessage::new_service`, …) and read replies with the accessors in
/// [`crate::reply`] (`IpvsMessage::service`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: IpvsCmd,
    pub attrs: Vec<IpvsCmdAttr>,
}

impl IpvsMessage {
    pub fn new(cmd: IpvsCmd, attrs: Vec<IpvsCmdAttr>) -> Self {
        Self { cmd, attrs }
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCmd::from(header.cmd);
        let mut attrs = Vec::new();
        for nla in NlasIterator::new(buf) {
            let nla = nla.with_context(|| format!("invalid attribute in IPVS {cmd} message"))?;
            attrs.push(
                IpvsCmdAttr::parse_with_param(&nla, cmd)
                    .with_context(|| format!("failed to parse IPVS {cmd} attribute"))?,
            );
        }
        Ok(Self { cmd, attrs })
    }
}
