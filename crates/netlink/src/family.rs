//! Which netlink family a message belongs to, and what kind of message it
//! is: the two labels every counter and every error carries.

use std::fmt;

/// The kernel subsystems kube-ipvs talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPVS over generic netlink (its family-id look-up is counted here too).
    Ipvs,
    /// ipset over nfnetlink (subsystem 6).
    Ipset,
    /// nf_tables over nfnetlink (subsystem 10).
    NfTables,
    /// conntrack over nfnetlink (subsystem 1).
    Conntrack,
    /// rtnetlink: links and addresses.
    Route,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipvs => "ipvs",
            Family::Ipset => "ipset",
            Family::NfTables => "nftables",
            Family::Conntrack => "conntrack",
            Family::Route => "route",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A message's kind as a static label (`NEW_SERVICE`, `ADD`, `NEWRULE`, …),
/// used for counters and error messages.
pub trait MessageKind {
    fn kind(&self) -> &'static str;
}
