//! The sans-I/O half of the funnel: turns a list of requests into datagrams
//! and matches the kernel's answers back to the requests.
//!
//! Kept free of sockets so that acks, errors, dumps and lost replies can be
//! tested with hand-made kernel answers.

use std::collections::HashMap;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_REQUEST,
};

use crate::{Counters, Error, Family, KernelError, MessageKind, Result};

/// The largest datagram we send. The kernel refuses a `sendmsg` larger than
/// the socket's send buffer (`netlink_sendmsg`: `len > sk_sndbuf - 32`); the
/// default buffer is about 208 KiB, so 64 KiB leaves room while still
/// carrying hundreds of requests per system call.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// How many answers one datagram may ask for before we wait for them. Every
/// answer is its own skb in our receive buffer (an ack costs about 768 bytes
/// of it, a dump part about 4.5 KiB), and the buffer is capped by
/// `net.core.rmem_max` (about 416 KiB by default, as SO_RCVBUF doubles it):
/// asking for more at once loses answers to ENOBUFS. So a datagram carries
/// at most 128 acknowledged requests.
pub const ANSWER_BUDGET: usize = 128;

/// What answer a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `NLM_F_ACK` is set: the request is done when its `NLMSG_ERROR`
    /// arrives (code 0 = success). Replies before it (a `GET` answered
    /// directly) are collected.
    Ack,
    /// `NLM_F_DUMP` is set: collect every part until `NLMSG_DONE` (or an
    /// error). The kernel runs one dump per socket at a time, so a dump is
    /// always sent in a datagram of its own.
    Dump,
    /// Nothing comes back: nf_tables' `BATCH_BEGIN`/`BATCH_END`, which
    /// kernels before 6.10 never acknowledge.
    Nothing,
}

/// One request for the funnel.
#[derive(Debug, Clone)]
pub struct Request<T> {
    pub message: T,
    /// Flags besides `NLM_F_REQUEST`, `NLM_F_ACK` and `NLM_F_DUMP` (which
    /// follow from `expect`): `NLM_F_CREATE`, `NLM_F_EXCL`, …
    pub flags: u16,
    pub expect: Expect,
}

impl<T> Request<T> {
    /// A change or a direct query, acknowledged by the kernel.
    pub fn ack(message: T, flags: u16) -> Self {
        Request {
            message,
            flags,
            expect: Expect::Ack,
        }
    }

    /// A dump, sent in a datagram of its own: a socket runs one dump at a
    /// time, and the kernel only finishes a dump (`NLMSG_DONE`) when we read
    /// its first part, so a second dump request in the same datagram would
    /// always be refused with `EBUSY`.
    pub fn dump(message: T, flags: u16) -> Self {
        Request {
            message,
            flags,
            expect: Expect::Dump,
        }
    }

    /// A message the kernel does not answer.
    pub fn unanswered(message: T, flags: u16) -> Self {
        Request {
            message,
            flags,
            expect: Expect::Nothing,
        }
    }

    fn header_flags(&self) -> u16 {
        NLM_F_REQUEST
            | self.flags
            | match self.expect {
                Expect::Ack => NLM_F_ACK,
                Expect::Dump => NLM_F_DUMP,
                Expect::Nothing => 0,
            }
    }
}

/// Requests encoded into datagrams, each datagram with the requests it holds.
pub(crate) struct Encoded {
    pub datagrams: Vec<(Vec<u8>, Vec<u32>)>,
}

/// Encodes `requests` with consecutive sequence numbers from `*next_seq`.
/// Returns the datagrams and, per request, its sequence number and kind.
pub(crate) fn encode<T>(
    family: Family,
    requests: &[Request<T>],
    next_seq: &mut u32,
    counters: &Counters,
) -> (Encoded, Vec<(u32, &'static str, Expect)>)
where
    T: NetlinkSerializable + MessageKind + Clone + std::fmt::Debug,
{
    let mut datagrams: Vec<(Vec<u8>, Vec<u32>)> = Vec::new();
    let mut current: (Vec<u8>, Vec<u32>) = (Vec::new(), Vec::new());
    let mut budget = 0;
    let mut slots = Vec::with_capacity(requests.len());
    for request in requests {
        let seq = *next_seq;
        *next_seq = next_seq.wrapping_add(1).max(1);
        let mut header = NetlinkHeader::default();
        header.flags = request.header_flags();
        header.sequence_number = seq;
        let mut message = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(request.message.clone()),
        );
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        let alone = request.expect == Expect::Dump;
        let cost = usize::from(request.expect == Expect::Ack);
        let full = current.0.len() + bytes.len() > MAX_DATAGRAM || budget + cost > ANSWER_BUDGET;
        // A lone dump starts a datagram of its own; so does a request that
        // would overflow the current one.
        if (alone || full) && !current.0.is_empty() {
            datagrams.push(std::mem::take(&mut current));
            budget = 0;
        }
        current.0.extend_from_slice(&bytes);
        current.1.push(seq);
        budget += cost;
        if alone {
            datagrams.push(std::mem::take(&mut current));
            budget = 0;
        }
        counters.record_sent(family, request.message.kind());
        slots.push((seq, request.message.kind(), request.expect));
    }
    if !current.0.is_empty() {
        datagrams.push(current);
    }
    (Encoded { datagrams }, slots)
}

struct Slot<T> {
    kind: &'static str,
    replies: Vec<T>,
    outcome: Option<Result<Vec<T>>>,
}

/// Matches kernel answers to outstanding requests by sequence number.
pub(crate) struct Exchange<T> {
    family: Family,
    slots: Vec<Slot<T>>,
    by_seq: HashMap<u32, usize>,
}

impl<T> Exchange<T>
where
    T: NetlinkDeserializable + MessageKind,
{
    pub fn new(family: Family, requests: &[(u32, &'static str, Expect)]) -> Self {
        let mut slots = Vec::with_capacity(requests.len());
        let mut by_seq = HashMap::with_capacity(requests.len());
        for (index, &(seq, kind, expect)) in requests.iter().enumerate() {
            let outcome = if expect == Expect::Nothing {
                Some(Ok(Vec::new()))
            } else {
                by_seq.insert(seq, index);
                None
            };
            slots.push(Slot {
                kind,
                replies: Vec::new(),
                outcome,
            });
        }
        Exchange {
            family,
            slots,
            by_seq,
        }
    }

    /// True when the requests in `seqs` all have their outcome.
    pub fn settled(&self, seqs: &[u32]) -> bool {
        seqs.iter().all(|seq| match self.by_seq.get(seq) {
            Some(&index) => self.slots[index].outcome.is_some(),
            None => true,
        })
    }

    /// Feeds one datagram from the kernel. Messages for unknown sequence
    /// numbers (left over from an earlier, abandoned exchange) are ignored.
    pub fn on_datagram(&mut self, bytes: &[u8], counters: &Counters) {
        for message_bytes in datagram_messages(bytes) {
            let Ok(message_bytes) = message_bytes else {
                return;
            };
            let buffer = NetlinkBuffer::new(message_bytes);
            let seq = buffer.sequence_number();
            let flags = buffer.flags();
            let Some(&index) = self.by_seq.get(&seq) else {
                counters.record_received(self.family, "stale");
                continue;
            };
            if self.slots[index].outcome.is_some() {
                continue;
            }
            match NetlinkMessage::<T>::deserialize(message_bytes) {
                Ok(message) => self.on_message(index, flags, message, counters),
                Err(e) => {
                    counters.record_received(self.family, "undecodable");
                    let slot = &self.slots[index];
                    let error = Error::Decode {
                        family: self.family,
                        kind: slot.kind,
                        detail: e.to_string(),
                    };
                    self.settle(index, Err(error));
                }
            }
        }
    }

    fn on_message(
        &mut self,
        index: usize,
        flags: u16,
        message: NetlinkMessage<T>,
        counters: &Counters,
    ) {
        match message.payload {
            NetlinkPayload::Error(error) => match error.code {
                None => {
                    counters.record_received(self.family, "ack");
                    let replies = std::mem::take(&mut self.slots[index].replies);
                    self.settle(index, Ok(replies));
                }
                Some(code) => {
                    counters.record_received(self.family, "error");
                    let kernel = KernelError {
                        family: self.family,
                        kind: self.slots[index].kind,
                        errno: KernelError::errno_of(code.get()),
                        code: code.get(),
                        message: ext_ack_message(flags, &error.header),
                        echo: echoed_request(flags, &error.header).to_vec(),
                    };
                    self.settle(index, Err(Error::Kernel(kernel)));
                }
            },
            NetlinkPayload::Done(done) => {
                counters.record_received(self.family, "done");
                if done.code != 0 {
                    let kernel = KernelError {
                        family: self.family,
                        kind: self.slots[index].kind,
                        errno: KernelError::errno_of(done.code),
                        code: done.code,
                        message: None,
                        echo: Vec::new(),
                    };
                    self.settle(index, Err(Error::Kernel(kernel)));
                } else {
                    let replies = std::mem::take(&mut self.slots[index].replies);
                    self.settle(index, Ok(replies));
                }
            }
            NetlinkPayload::InnerMessage(inner) => {
                counters.record_received(self.family, inner.kind());
                self.slots[index].replies.push(inner);
            }
            NetlinkPayload::Overrun(_) => {
                let family = self.family;
                self.settle(index, Err(Error::Overrun { family }));
            }
            _ => {}
        }
    }

    fn settle(&mut self, index: usize, outcome: Result<Vec<T>>) {
        let slot = &mut self.slots[index];
        if slot.outcome.is_none() {
            slot.outcome = Some(outcome);
        }
    }

    /// Gives every request still waiting the error `make`.
    pub fn abandon(&mut self, make: impl Fn(Family, &'static str) -> Error) {
        for index in 0..self.slots.len() {
            if self.slots[index].outcome.is_none() {
                let error = make(self.family, self.slots[index].kind);
                self.settle(index, Err(error));
            }
        }
    }

    /// The outcome of every request, in request order.
    /// Call after every request settled or was abandoned; a request still
    /// waiting (a caller bug) gets `NoAnswer`.
    pub fn finish(mut self) -> Vec<Result<Vec<T>>> {
        self.abandon(|family, kind| Error::NoAnswer {
            family,
            kind,
            seconds: 0,
        });
        self.slots
            .into_iter()
            .map(|slot| slot.outcome.expect("abandon settled every slot"))
            .collect()
    }
}

/// The original request inside an `NLMSG_ERROR` payload (after the error
/// code): the whole message unless the kernel capped it to its header.
pub(crate) fn echoed_request(flags: u16, after_code: &[u8]) -> &[u8] {
    if flags & NLM_F_CAPPED != 0 || after_code.len() < 16 {
        return &after_code[..after_code.len().min(16)];
    }
    let length = u32::from_ne_bytes(after_code[..4].try_into().expect("4 bytes")) as usize;
    &after_code[..length.min(after_code.len())]
}

/// `NLMSGERR_ATTR_MSG` from `linux/netlink.h`: the extended-ack text.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Reads the extended-ack message from an `NLMSG_ERROR` payload (after the
/// error code): the original request's header (and body, unless the kernel
/// capped it), then TLVs when `NLM_F_ACK_TLVS` is set.
pub(crate) fn ext_ack_message(flags: u16, after_code: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || after_code.len() < 16 {
        return None;
    }
    let original_len = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        u32::from_ne_bytes(after_code[..4].try_into().ok()?) as usize
    };
    let mut tlvs = after_code.get((original_len + 3) & !3..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|&b| b == 0).next().unwrap_or(text);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        tlvs = tlvs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

/// The messages of one netlink datagram, each as its own bytes. Messages
/// are 4-byte aligned inside a datagram; the last one may end without
/// padding. A header that does not fit (a truncated or garbled datagram)
/// yields one `Err` and ends the iteration.
pub(crate) fn datagram_messages(mut bytes: &[u8]) -> impl Iterator<Item = Result<&[u8], ()>> {
    std::iter::from_fn(move || {
        if bytes.len() < 16 {
            return None;
        }
        let Ok(buffer) = NetlinkBuffer::new_checked(bytes) else {
            bytes = &[];
            return Some(Err(()));
        };
        let length = buffer.length() as usize;
        let message = &bytes[..length];
        bytes = &bytes[((length + 3) & !3).min(bytes.len())..];
        Some(Ok(message))
    })
}

#[cfg(test)]
mod tests;
