//! ipset over nfnetlink: the `KUBE-*` sets, created, filled and read back
//! without running the `ipset` tool.
//!
//! Writes are idempotent the way the tool's `-exist` is: requests go out
//! without `NLM_F_EXCL`, so creating an identical set, adding a present
//! element or deleting a missing one succeeds. Element changes are batched
//! (one ADT message per page, many pages per `sendmsg`).

use std::collections::HashMap;

use kipvs_packet_ipset::{
    error_lineno, merge_list_replies, AdtBatch, CreateOptions, Entry, IpsetCmd, IpsetMessage,
    RejectedEntry, SetFamily, SetInfo, SetType,
};
use netlink_packet_core::NLM_F_CREATE;
use netlink_sys::protocols::NETLINK_NETFILTER;

use crate::{
    Channel, Counters, Error, ErrorClass, Family, KernelError, MessageKind, Request, Result,
};

/// ipset client.
pub struct Ipset {
    channel: Channel,
    /// Highest revision the kernel has per (type, family), asked once.
    revisions: HashMap<(String, u8), u8>,
}

impl Ipset {
    pub fn open(counters: Counters) -> Result<Ipset> {
        Ok(Ipset {
            channel: Channel::open(Family::Ipset, NETLINK_NETFILTER, counters)?,
            revisions: HashMap::new(),
        })
    }

    /// The kernel's (highest, lowest) ipset protocol version.
    pub async fn protocol(&mut self) -> Result<(u8, u8)> {
        let replies = self.request(IpsetMessage::protocol()).await?;
        first_reply(&replies, "PROTOCOL")?
            .protocol_reply()
            .map_err(|e| decode("PROTOCOL", e))
    }

    /// The highest revision of `set_type` the kernel implements for `family`.
    pub async fn max_revision(&mut self, set_type: &SetType, family: SetFamily) -> Result<u8> {
        let key = (set_type.type_name().to_owned(), u8::from(family));
        if let Some(revision) = self.revisions.get(&key) {
            return Ok(*revision);
        }
        let replies = self
            .request(IpsetMessage::type_query(set_type, family))
            .await?;
        let (revision, _min) = first_reply(&replies, "TYPE")?
            .type_reply()
            .map_err(|e| decode("TYPE", e))?;
        self.revisions.insert(key, revision);
        Ok(revision)
    }

    /// Creates the set at the kernel's highest revision of its type
    /// (equivalent to `ipset create -exist NAME TYPE …`). An identical set
    /// already there is success; a set of that name with another type is an
    /// error (`IPSET_ERR_EXIST` from the kernel, classed `AlreadyExists`).
    pub async fn create(
        &mut self,
        name: &str,
        set_type: &SetType,
        family: SetFamily,
        options: &CreateOptions,
    ) -> Result<()> {
        let revision = self.max_revision(set_type, family).await?;
        let message = IpsetMessage::create(name, set_type, family, revision, options);
        self.request(message).await.map(drop)
    }

    /// `ipset destroy NAME`; a missing set is success.
    pub async fn destroy(&mut self, name: &str) -> Result<()> {
        ignore(
            self.request(IpsetMessage::destroy(name)).await,
            ErrorClass::NotFound,
        )
    }

    /// `ipset flush NAME`.
    pub async fn flush(&mut self, name: &str) -> Result<()> {
        self.request(IpsetMessage::flush(name)).await.map(drop)
    }

    /// `ipset rename FROM TO`.
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.request(IpsetMessage::rename(from, to)).await.map(drop)
    }

    /// `ipset swap A B`.
    pub async fn swap(&mut self, a: &str, b: &str) -> Result<()> {
        self.request(IpsetMessage::swap(a, b)).await.map(drop)
    }

    /// Every set with its members, from one dump (`ipset list`).
    pub async fn list_all(&mut self) -> Result<Vec<SetInfo>> {
        let replies = self
            .channel
            .request(Request::dump(IpsetMessage::list(None), 0))
            .await?;
        merge_list_replies(replies).map_err(|e| decode("LIST", e))
    }

    /// One set with its members (`ipset list NAME`); `None` if it is missing.
    pub async fn list(&mut self, name: &str) -> Result<Option<SetInfo>> {
        let dump = Request::dump(IpsetMessage::list(Some(name)), 0);
        match self.channel.request(dump).await {
            Ok(replies) => Ok(merge_list_replies(replies)
                .map_err(|e| decode("LIST", e))?
                .into_iter()
                .find(|set| set.name == name)),
            Err(e) if e.class() == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds the entries, batched and pipelined; entries already present are
    /// fine (`ipset -exist add`). On a failure the error names the entry.
    /// An entry the kernel would refuse outright (a comment over
    /// `IPSET_MAX_COMMENT_SIZE`) is not sent; the others still are, and the
    /// error names it.
    pub async fn add(&mut self, name: &str, entries: &[Entry]) -> Result<()> {
        self.adt_one(true, name, entries).await
    }

    /// Deletes the entries, batched and pipelined; missing entries are fine.
    /// Refused entries as for [`Ipset::add`].
    pub async fn del(&mut self, name: &str, entries: &[Entry]) -> Result<()> {
        self.adt_one(false, name, entries).await
    }

    /// Several additions and deletions, each `(add, set, entries)`, sent
    /// pipelined in one exchange (as `ipset restore` sends a file), with
    /// a result per change: one change failing does not stop the others.
    pub async fn adt_many(&mut self, changes: &[(bool, &str, &[Entry])]) -> Vec<Result<()>> {
        let mut batches: Vec<AdtBatch> = changes
            .iter()
            .map(|(add, name, entries)| match add {
                true => IpsetMessage::add_batch(name, entries),
                false => IpsetMessage::del_batch(name, entries),
            })
            .collect();
        let mut requests = Vec::new();
        let mut pages_of = Vec::with_capacity(changes.len());
        for batch in &mut batches {
            pages_of.push(batch.messages.len());
            let pages = std::mem::take(&mut batch.messages);
            requests.extend(pages.into_iter().map(|page| Request::ack(page, 0)));
        }
        let mut outcomes = self.channel.exchange(requests).await.into_iter();
        changes
            .iter()
            .zip(&batches)
            .zip(pages_of)
            .map(|(((add, name, entries), batch), pages)| {
                let kind = if *add { "ADD" } else { "DEL" };
                let mut result = Ok(());
                for outcome in outcomes.by_ref().take(pages) {
                    if result.is_ok() {
                        result = match outcome {
                            Ok(_) => Ok(()),
                            Err(Error::Kernel(kernel)) => Err(entry_error(name, entries, kernel)),
                            Err(e) => Err(e),
                        };
                    }
                }
                result.and_then(|()| match batch.rejected.first() {
                    Some(first) => Err(rejected_error(
                        name,
                        entries,
                        kind,
                        first,
                        batch.rejected.len(),
                    )),
                    None => Ok(()),
                })
            })
            .collect()
    }

    /// Whether `entry` is in the set (`ipset test`).
    pub async fn test(&mut self, name: &str, entry: &Entry) -> Result<bool> {
        match self.request(IpsetMessage::test(name, entry)).await {
            Ok(_) => Ok(true),
            // TEST answers "not in set" with IPSET_ERR_EXIST.
            Err(e) if e.class() == ErrorClass::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The kernel index of a set (what the xt `set` match refers to).
    pub async fn index(&mut self, name: &str) -> Result<u16> {
        let replies = self.request(IpsetMessage::get_byname(name)).await?;
        first_reply(&replies, "GET_BYNAME")?
            .index()
            .map_err(|e| decode("GET_BYNAME", e))
    }

    /// One change of [`Ipset::adt_many`].
    async fn adt_one(&mut self, add: bool, name: &str, entries: &[Entry]) -> Result<()> {
        let mut results = self.adt_many(&[(add, name, entries)]).await;
        results.pop().unwrap_or(Ok(()))
    }

    /// A non-dump request. Of the tool's flags only `NLM_F_CREATE` is kept:
    /// the funnel sets `REQUEST` and `ACK`, and leaving out `NLM_F_EXCL` makes
    /// writes idempotent.
    async fn request(&mut self, message: IpsetMessage) -> Result<Vec<IpsetMessage>> {
        let flags = message.nlmsg_flags() & NLM_F_CREATE;
        self.channel.request(Request::ack(message, flags)).await
    }
}

fn ignore(outcome: Result<Vec<IpsetMessage>>, benign: ErrorClass) -> Result<()> {
    match outcome {
        Err(e) if e.class() != benign => Err(e),
        _ => Ok(()),
    }
}

fn first_reply<'a>(replies: &'a [IpsetMessage], kind: &'static str) -> Result<&'a IpsetMessage> {
    replies.first().ok_or_else(|| Error::Unexpected {
        family: Family::Ipset,
        kind,
        detail: "the kernel acknowledged without a reply".into(),
    })
}

fn decode(kind: &'static str, e: netlink_packet_core::DecodeError) -> Error {
    Error::Decode {
        family: Family::Ipset,
        kind,
        detail: e.to_string(),
    }
}

/// The entries the batch builder left out, named by the first of them.
fn rejected_error(
    set: &str,
    entries: &[Entry],
    kind: &'static str,
    first: &RejectedEntry,
    count: usize,
) -> Error {
    let entry = entries
        .get(first.index)
        .map_or_else(String::new, |entry| format!(", entry {entry}"));
    let others = match count {
        0 | 1 => String::new(),
        n => format!(" (and {} more entries refused)", n - 1),
    };
    Error::NotSent {
        family: Family::Ipset,
        kind,
        detail: format!("set {set}{entry}: {first}{others}"),
    }
}

/// The kernel stops an ADT batch at the first bad element and rewrites the
/// echoed request's LINENO to it; name that element in the error.
pub(crate) fn entry_error(set: &str, entries: &[Entry], mut kernel: KernelError) -> Error {
    let failed = error_lineno(&kernel.echo)
        .and_then(|lineno| kipvs_packet_ipset::entry_for_lineno(entries, lineno));
    let detail = match failed {
        Some(entry) => format!("set {set}, entry {entry}"),
        None => format!("set {set}"),
    };
    kernel.message = Some(match kernel.message.take() {
        Some(text) => format!("{detail}: {text}"),
        None => detail,
    });
    Error::Kernel(kernel)
}

impl MessageKind for IpsetMessage {
    fn kind(&self) -> &'static str {
        match self.cmd {
            IpsetCmd::Protocol => "PROTOCOL",
            IpsetCmd::Create => "CREATE",
            IpsetCmd::Destroy => "DESTROY",
            IpsetCmd::Flush => "FLUSH",
            IpsetCmd::Rename => "RENAME",
            IpsetCmd::Swap => "SWAP",
            IpsetCmd::List => "LIST",
            IpsetCmd::Save => "SAVE",
            IpsetCmd::Add => "ADD",
            IpsetCmd::Del => "DEL",
            IpsetCmd::Test => "TEST",
            IpsetCmd::Header => "HEADER",
            IpsetCmd::Type => "TYPE",
            IpsetCmd::GetByName => "GET_BYNAME",
            IpsetCmd::GetByIndex => "GET_BYINDEX",
            _ => "OTHER",
        }
    }
}
