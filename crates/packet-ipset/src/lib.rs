//! Typed ipset messages over nfnetlink (subsystem `NFNL_SUBSYS_IPSET` = 6),
//! emit and parse only, no I/O. Built on `netlink-packet-core`, so an
//! [`IpsetMessage`] goes straight into a `NetlinkMessage<IpsetMessage>`.
//!
//! Layers:
//! - wire types: [`IpsetMessage`] (`nfgenmsg` + [`IpsetAttr`]s), the nested
//!   [`DataAttr`]s of `IPSET_ATTR_DATA` (parsed in a [`DataContext`], because
//!   create and element attributes share ids), [`IpAddrAttr`];
//! - request builders on [`IpsetMessage`], one per `ipset` command
//!   (`ipset create` → [`IpsetMessage::create`], `ipset add` →
//!   [`IpsetMessage::add`], `ipset restore` of many adds →
//!   [`IpsetMessage::add_batch`], …), byte-identical to what `ipset` 7.x
//!   sends, with [`IpsetMessage::nlmsg_flags`];
//! - reply readers: [`IpsetMessage::protocol_reply`],
//!   [`IpsetMessage::type_reply`], [`IpsetMessage::index`],
//!   [`IpsetMessage::set_info`] and [`merge_list_replies`] (`ipset list`);
//! - errors: [`ipset_error_name`], and [`error_lineno`] +
//!   [`entry_for_lineno`] to find the element a batch failed on.

mod attribute;
mod batch;
mod cmd;
pub mod constants;
mod data;
mod entry;
mod error;
mod ip;
mod message;
mod reply;
mod request;
mod set_type;
mod strings;

#[cfg(test)]
mod tests;

pub use self::{
    attribute::IpsetAttr,
    batch::{
        adt_batch, entry_for_lineno, AdtBatch, RejectReason, RejectedEntry, IPSET_BATCH_BUFSIZE,
    },
    cmd::IpsetCmd,
    data::{DataAttr, DataContext},
    entry::Entry,
    error::*,
    ip::IpAddrAttr,
    message::{IpsetMessage, NFGEN_FAMILY_DEFAULT},
    reply::{merge_list_replies, ListPart, SetInfo},
    set_type::{CreateOptions, SetFamily, SetType},
};
