//! Typed messages of the IPVS generic netlink family (`"IPVS"`, version 1).
//!
//! No I/O: [`IpvsMessage`] implements `GenlFamily`, `Emitable` and
//! `ParseableParametrized<[u8], GenlHeader>`, so it travels as
//! `NetlinkMessage<GenlMessage<IpvsMessage>>` once the family id has been
//! resolved through nlctrl.
//!
//! Two layers:
//! - wire level: [`IpvsCmd`], [`IpvsCmdAttr`], [`SvcAttr`], [`DestAttr`],
//!   [`StatsAttr`]/[`Stats64Attr`] mirror `include/uapi/linux/ip_vs.h`
//!   attribute by attribute; unknown attributes land in `Other` and
//!   re-emit byte for byte.
//! - friendly level: [`ServiceKey`], [`Service`], [`Destination`],
//!   [`Info`], [`Timeouts`], request builders such as
//!   [`IpvsMessage::new_service`] (equivalent to `ipvsadm -A …`) and reply
//!   accessors such as [`IpvsMessage::service`].
//!
//! Byte-order rules (`ip_vs_ctl.c`): ports are network order, every other
//! integer host order; addresses are the 16-byte `union nf_inet_addr`.

mod address;
mod cmd;
mod cmd_attr;
mod dest_attr;
mod flags;
mod forward;
mod message;
mod model;
mod nest;
mod protocol;
pub mod reply;
pub mod request;
mod service_attr;
mod stats;
mod wire;

pub use self::{
    address::*, cmd::*, cmd_attr::*, dest_attr::*, flags::*, forward::*, message::*, model::*,
    nest::Nest, protocol::*, service_attr::*, stats::*,
};

#[cfg(test)]
mod tests;
