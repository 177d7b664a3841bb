//! Batched ADD/DEL, the way `ipset restore` aggregates lines.
//!
//! libipset (`lib/session.c`, `build_msg`) opens one message per run of
//! ADD or DEL lines for the same set: command level `PROTOCOL`, `SETNAME`,
//! `LINENO` (the first line of the message), then a nested `ADT` holding one
//! nested `DATA` per element, each ending with that element's own `LINENO`.
//! The kernel (`ip_set_ad`) insists on `LINENO` whenever `ADT` is present.
//!
//! The buffer is one page (`getpagesize()`, 4096 bytes including the
//! `nlmsghdr`). Before each attribute libipset checks `BUFFER_FULL`: the
//! attribute at its *largest* size (256 bytes for a comment, whatever its
//! real length) plus room for a `struct nlmsgerr` must still fit; when it
//! does not, the element is dropped from this message and starts the next
//! one. [`adt_batch`] applies the same rule, so a batch splits exactly where
//! the tool's does.

use crate::{
    attribute::IpsetAttr, cmd::IpsetCmd, constants::*, data::DataAttr, entry::Entry,
    message::IpsetMessage,
};

/// libipset's buffer: one page, `nlmsghdr` included.
pub const IPSET_BATCH_BUFSIZE: usize = 4096;

const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
/// `MNL_ALIGN(sizeof(struct nlmsgerr))`: reserved for the error reply.
const NLMSGERR_LEN: usize = 20;
/// The comment policy length libipset checks with (`IPSET_MAX_COMMENT_SIZE + 1`).
const COMMENT_POLICY_LEN: usize = IPSET_MAX_COMMENT_SIZE + 1;

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Tracks the message length the way libipset's buffer does.
struct Page {
    len: usize,
}

impl Page {
    /// `BUFFER_FULL(bufsize, nlmsg_len, nestlen, alen)` negated.
    fn fits(&self, nestlen: usize, check_len: usize) -> bool {
        self.len + nestlen + NLA_HDRLEN + align(check_len) + NLMSGERR_LEN <= IPSET_BATCH_BUFSIZE
    }

    /// Appends one element (DATA + its attributes + LINENO) if every
    /// attribute passes libipset's check; leaves `len` untouched otherwise.
    fn try_push(&mut self, data: &[DataAttr]) -> bool {
        // open_nested(DATA): only `nlmsg_len + MNL_ATTR_HDRLEN > bufsize`.
        if self.len + NLA_HDRLEN > IPSET_BATCH_BUFSIZE {
            return false;
        }
        let mut len = self.len + NLA_HDRLEN;
        for attr in data {
            let probe = Page { len };
            let (nestlen, check_len, real_len) = match attr {
                DataAttr::Ip(ip) | DataAttr::IpTo(ip) | DataAttr::Ip2(ip) => {
                    let addr_len = if ip.addr.is_ipv4() { 4 } else { 16 };
                    (NLA_HDRLEN, addr_len, NLA_HDRLEN + NLA_HDRLEN + addr_len)
                }
                DataAttr::Comment(comment) => {
                    (0, COMMENT_POLICY_LEN, NLA_HDRLEN + align(comment.len() + 1))
                }
                other => {
                    let value_len = netlink_packet_core::Nla::value_len(other);
                    (0, value_len, NLA_HDRLEN + align(value_len))
                }
            };
            if !probe.fits(nestlen, check_len) {
                return false;
            }
            len += real_len;
        }
        self.len = len;
        true
    }
}

/// The messages `ipset restore` would send for `cmd` (ADD or DEL) lines
/// `first_lineno, first_lineno + 1, …` naming `entries` of set `name`.
///
/// # Panics
/// If one element alone does not fit a page (impossible with the
/// attributes [`Entry`] produces).
pub fn adt_batch(
    cmd: IpsetCmd,
    name: &str,
    entries: &[Entry],
    first_lineno: u32,
) -> Vec<IpsetMessage> {
    let header_len = NLMSG_HDRLEN
        + NFGENMSG_LEN
        + align(NLA_HDRLEN + 1) // PROTOCOL
        + NLA_HDRLEN
        + align(name.len() + 1) // SETNAME
        + NLA_HDRLEN
        + 4 // LINENO
        + NLA_HDRLEN; // ADT
    let mut messages = Vec::new();
    let mut elements: Vec<Vec<DataAttr>> = Vec::new();
    let mut page = Page { len: header_len };
    let mut message_lineno = first_lineno;
    for (index, entry) in entries.iter().enumerate() {
        let lineno = first_lineno + index as u32;
        let mut data = entry.to_data_attrs();
        data.push(DataAttr::LineNo(lineno));
        if !page.try_push(&data) {
            assert!(
                !elements.is_empty(),
                "one ipset element does not fit a page"
            );
            messages.push(batch_message(
                cmd,
                name,
                message_lineno,
                std::mem::take(&mut elements),
            ));
            page = Page { len: header_len };
            message_lineno = lineno;
            assert!(
                page.try_push(&data),
                "one ipset element does not fit a page"
            );
        }
        elements.push(data);
    }
    if !elements.is_empty() {
        messages.push(batch_message(cmd, name, message_lineno, elements));
    }
    messages
}

fn batch_message(
    cmd: IpsetCmd,
    name: &str,
    lineno: u32,
    elements: Vec<Vec<DataAttr>>,
) -> IpsetMessage {
    IpsetMessage::new(
        cmd,
        vec![
            IpsetAttr::Protocol(IPSET_PROTOCOL),
            IpsetAttr::SetName(name.to_owned()),
            IpsetAttr::LineNo(lineno),
            IpsetAttr::Adt(elements),
        ],
    )
}

impl IpsetMessage {
    /// ADD `entries` to `name`, as few page-sized messages as libipset would
    /// use. Entry `i` (0-based) carries `LINENO` `i + 1`; map an error back
    /// with [`crate::error_lineno`] and [`entry_for_lineno`].
    pub fn add_batch(name: &str, entries: &[Entry]) -> Vec<IpsetMessage> {
        adt_batch(IpsetCmd::Add, name, entries, 1)
    }

    /// DEL `entries` from `name`; numbering as in [`IpsetMessage::add_batch`].
    pub fn del_batch(name: &str, entries: &[Entry]) -> Vec<IpsetMessage> {
        adt_batch(IpsetCmd::Del, name, entries, 1)
    }

    /// The command-level `IPSET_ATTR_LINENO`, if any.
    pub fn lineno(&self) -> Option<u32> {
        self.attrs.iter().find_map(|attr| match attr {
            IpsetAttr::LineNo(lineno) => Some(*lineno),
            _ => None,
        })
    }
}

/// The entry that a `LINENO` from [`IpsetMessage::add_batch`] /
/// [`IpsetMessage::del_batch`] names: `entries[lineno - 1]`.
pub fn entry_for_lineno(entries: &[Entry], lineno: u32) -> Option<&Entry> {
    entries.get(usize::try_from(lineno).ok()?.checked_sub(1)?)
}
