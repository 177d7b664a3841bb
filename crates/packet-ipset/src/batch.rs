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

/// An element [`adt_batch`] leaves out, and why: sending it would make the
/// kernel refuse the message (or the page rule could not place it at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEntry {
    /// Its position in the entries given to [`adt_batch`].
    pub index: usize,
    /// The `LINENO` it would have carried (numbering is kept: the elements
    /// after it still carry their own line).
    pub lineno: u32,
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The comment is longer than `IPSET_MAX_COMMENT_SIZE`: the kernel's
    /// attribute policy refuses the whole message (`IPSET_ERR_PROTOCOL`).
    CommentTooLong { len: usize },
    /// Alone in a fresh message the element still exceeds one page.
    DoesNotFitAPage { len: usize },
}

impl std::fmt::Display for RejectedEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: ", self.lineno)?;
        match self.reason {
            RejectReason::CommentTooLong { len } => write!(
                f,
                "comment of {len} bytes, the kernel takes at most {IPSET_MAX_COMMENT_SIZE}"
            ),
            RejectReason::DoesNotFitAPage { len } => write!(
                f,
                "element of {len} bytes does not fit one {IPSET_BATCH_BUFSIZE}-byte message"
            ),
        }
    }
}

/// What [`adt_batch`] built: the messages to send, and the elements it left
/// out (the others are all in `messages`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdtBatch {
    pub messages: Vec<IpsetMessage>,
    pub rejected: Vec<RejectedEntry>,
}

/// The messages `ipset restore` would send for `cmd` (ADD or DEL) lines
/// `first_lineno, first_lineno + 1, …` naming `entries` of set `name`.
///
/// An element the kernel would refuse outright (a comment longer than
/// `IPSET_MAX_COMMENT_SIZE`) or that does not fit a page even alone is left
/// out and reported in [`AdtBatch::rejected`]; every other element is sent.
pub fn adt_batch(cmd: IpsetCmd, name: &str, entries: &[Entry], first_lineno: u32) -> AdtBatch {
    let header_len = NLMSG_HDRLEN
        + NFGENMSG_LEN
        + align(NLA_HDRLEN + 1) // PROTOCOL
        + NLA_HDRLEN
        + align(name.len() + 1) // SETNAME
        + NLA_HDRLEN
        + 4 // LINENO
        + NLA_HDRLEN; // ADT
    let mut batch = AdtBatch::default();
    let mut elements: Vec<Vec<DataAttr>> = Vec::new();
    let mut page = Page { len: header_len };
    let mut message_lineno = first_lineno;
    for (index, entry) in entries.iter().enumerate() {
        let lineno = first_lineno.wrapping_add(index as u32);
        let mut data = entry.to_data_attrs();
        data.push(DataAttr::LineNo(lineno));
        if let Some(reason) = refused(&data, header_len) {
            batch.rejected.push(RejectedEntry {
                index,
                lineno,
                reason,
            });
            continue;
        }
        if !page.try_push(&data) {
            if !elements.is_empty() {
                batch.messages.push(batch_message(
                    cmd,
                    name,
                    message_lineno,
                    std::mem::take(&mut elements),
                ));
            }
            page = Page { len: header_len };
            message_lineno = lineno;
            if !page.try_push(&data) {
                // Only libipset's reservation can refuse here (the real
                // size was checked above); report it the same way.
                batch.rejected.push(RejectedEntry {
                    index,
                    lineno,
                    reason: RejectReason::DoesNotFitAPage {
                        len: element_len(&data),
                    },
                });
                continue;
            }
        }
        elements.push(data);
    }
    if !elements.is_empty() {
        batch
            .messages
            .push(batch_message(cmd, name, message_lineno, elements));
    }
    batch
}

/// The encoded size of one element: the `DATA` nest and its attributes.
fn element_len(data: &[DataAttr]) -> usize {
    NLA_HDRLEN
        + data
            .iter()
            .map(netlink_packet_core::Emitable::buffer_len)
            .sum::<usize>()
}

/// Why the kernel would refuse `data` whatever message it travels in.
fn refused(data: &[DataAttr], header_len: usize) -> Option<RejectReason> {
    for attr in data {
        if let DataAttr::Comment(comment) = attr {
            if comment.len() > IPSET_MAX_COMMENT_SIZE {
                return Some(RejectReason::CommentTooLong { len: comment.len() });
            }
        }
    }
    let len = element_len(data);
    (header_len + len + NLMSGERR_LEN > IPSET_BATCH_BUFSIZE)
        .then_some(RejectReason::DoesNotFitAPage { len })
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
    pub fn add_batch(name: &str, entries: &[Entry]) -> AdtBatch {
        adt_batch(IpsetCmd::Add, name, entries, 1)
    }

    /// DEL `entries` from `name`; numbering as in [`IpsetMessage::add_batch`].
    pub fn del_batch(name: &str, entries: &[Entry]) -> AdtBatch {
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
