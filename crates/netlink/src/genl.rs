//! Generic-netlink family look-up (nlctrl `CTRL_CMD_GETFAMILY`), done through
//! the funnel on the family's own socket.

use netlink_packet_generic::{
    ctrl::{nlas::GenlCtrlAttrs, GenlCtrl, GenlCtrlCmd},
    GenlMessage,
};

use crate::{Channel, ErrorClass, MessageKind, Request, Result};

/// Resolves a genl family name to its id; `Ok(None)` when the kernel has no
/// such family (for IPVS: the `ip_vs` module is not loaded and cannot be
/// auto-loaded).
pub(crate) async fn resolve_family(channel: &mut Channel, name: &str) -> Result<Option<u16>> {
    let query = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_owned())],
    });
    match channel.request(Request::ack(query, 0)).await {
        Ok(replies) => Ok(replies.iter().find_map(|reply| {
            reply.payload.nlas.iter().find_map(|nla| match nla {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
        })),
        Err(e) if e.class() == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl MessageKind for GenlMessage<GenlCtrl> {
    fn kind(&self) -> &'static str {
        match self.payload.cmd {
            GenlCtrlCmd::GetFamily => "CTRL_GETFAMILY",
            GenlCtrlCmd::NewFamily => "CTRL_NEWFAMILY",
            _ => "CTRL_OTHER",
        }
    }
}
