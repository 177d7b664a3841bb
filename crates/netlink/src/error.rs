//! The one error type of the kernel I/O layer, and how its errors are
//! classified for the callers' retry and idempotence decisions.

use std::{fmt, io};

use crate::Family;

/// How a caller should treat a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The object is already there (`EEXIST`, ipset's `IPSET_ERR_EXIST`):
    /// for a create, the desired state already holds.
    AlreadyExists,
    /// The object is not there (`ENOENT`, `ESRCH`): for a delete, the
    /// desired state already holds.
    NotFound,
    /// Try again later (`ENOBUFS`, `EINTR`, `EBUSY`, `EAGAIN`, `ENOMEM`, a
    /// lost reply): nothing is wrong with the request itself.
    Retryable,
    /// The request is wrong or the kernel refuses it; repeating it will not
    /// help.
    Fatal,
}

/// `IPSET_ERR_EXIST` from `linux/netfilter/ipset/ip_set.h`: ipset's own
/// "element/set already exists" (and, for TEST, "not in set").
const IPSET_ERR_EXIST: i32 = 4103;
/// `IPSET_ERR_EXIST_SETNAME2`: the target of a rename already exists.
const IPSET_ERR_EXIST_SETNAME2: i32 = 4101;

/// A request the kernel answered with a negative error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub family: Family,
    /// The request's kind as counted (for example `NEW_SERVICE`).
    pub kind: &'static str,
    /// The positive errno (or ipset's private code, >= 4096); 0 when the
    /// kernel's code was not a negative errno (see [`KernelError::code`]).
    pub errno: i32,
    /// The code exactly as the kernel's message carried it (a negative
    /// errno). Kept because a garbled reply can carry a code with no
    /// positive counterpart (`i32::MIN`) or a positive one.
    pub code: i32,
    /// The kernel's extended-ack message, when it gave one.
    pub message: Option<String>,
    /// The failed request as the kernel echoed it back (nlmsghdr and body).
    /// ipset batches rely on it: the kernel rewrites the request's LINENO to
    /// the element that failed.
    pub echo: Vec<u8>,
}

impl KernelError {
    /// The positive errno a kernel error code stands for, or 0 when the code
    /// is not a negative errno: such a code is classed `Fatal`, and negating
    /// `i32::MIN` would overflow.
    pub fn errno_of(code: i32) -> i32 {
        code.checked_neg().filter(|errno| *errno > 0).unwrap_or(0)
    }

    pub fn class(&self) -> ErrorClass {
        classify_errno(self.errno)
    }
}

/// Classifies a positive errno (or ipset private code).
pub fn classify_errno(errno: i32) -> ErrorClass {
    match errno {
        libc::EEXIST | IPSET_ERR_EXIST | IPSET_ERR_EXIST_SETNAME2 => ErrorClass::AlreadyExists,
        // ENODEV: no such link; EADDRNOTAVAIL: deleting an address not bound.
        libc::ENOENT | libc::ESRCH | libc::ENODEV | libc::EADDRNOTAVAIL => ErrorClass::NotFound,
        libc::ENOBUFS | libc::EINTR | libc::EBUSY | libc::EAGAIN | libc::ENOMEM => {
            ErrorClass::Retryable
        }
        _ => ErrorClass::Fatal,
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        write!(f, "{} {} failed: ", self.family, self.kind)?;
        if self.errno <= 0 {
            write!(f, "invalid error code {}", self.code)?;
        } else if self.errno >= 4096 {
            write!(f, "ipset error {}", self.errno)?;
        } else {
            write!(f, "{os}")?;
        }
        if let Some(message) = &self.message {
            write!(f, " ({message})")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong between us and the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel refused one request.
    #[error("{0}")]
    Kernel(KernelError),
    /// A socket call failed.
    #[error("{family} netlink socket: {action}: {source}")]
    Io {
        family: Family,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel's bytes did not parse.
    #[error("{family} {kind}: cannot decode the kernel's reply: {detail}")]
    Decode {
        family: Family,
        kind: &'static str,
        detail: String,
    },
    /// The kernel never answered (a reply lost to a receive-buffer overrun,
    /// or a wedged kernel).
    #[error("{family} {kind}: no answer from the kernel within {seconds}s")]
    NoAnswer {
        family: Family,
        kind: &'static str,
        seconds: u64,
    },
    /// The receive buffer overflowed and replies were lost.
    #[error("{family}: netlink receive buffer overrun, replies lost")]
    Overrun { family: Family },
    #[error(
        "IPVS is not available in this kernel (genl family IPVS not found): load the ip_vs module"
    )]
    IpvsUnavailable,
    /// A request that was not sent because the kernel would refuse it (or
    /// it cannot be encoded at all); the detail names the object.
    #[error("{family} {kind}: not sent: {detail}")]
    NotSent {
        family: Family,
        kind: &'static str,
        detail: String,
    },
    /// The kernel answered with something the request does not allow.
    #[error("{family} {kind}: unexpected answer: {detail}")]
    Unexpected {
        family: Family,
        kind: &'static str,
        detail: String,
    },
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Kernel(e) => e.class(),
            Error::Io { source, .. } => source
                .raw_os_error()
                .map_or(ErrorClass::Fatal, classify_errno),
            Error::NoAnswer { .. } | Error::Overrun { .. } => ErrorClass::Retryable,
            Error::Decode { .. }
            | Error::IpvsUnavailable
            | Error::Unexpected { .. }
            | Error::NotSent { .. } => ErrorClass::Fatal,
        }
    }

    /// The kernel errno, when the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel(e) if e.errno > 0 => Some(e.errno),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_errnos_the_reconciler_cares_about() {
        assert_eq!(classify_errno(libc::EEXIST), ErrorClass::AlreadyExists);
        assert_eq!(classify_errno(4103), ErrorClass::AlreadyExists);
        assert_eq!(classify_errno(libc::ENOENT), ErrorClass::NotFound);
        assert_eq!(classify_errno(libc::ESRCH), ErrorClass::NotFound);
        for errno in [libc::ENOBUFS, libc::EINTR, libc::EBUSY, libc::EAGAIN] {
            assert_eq!(classify_errno(errno), ErrorClass::Retryable, "{errno}");
        }
        assert_eq!(classify_errno(libc::EINVAL), ErrorClass::Fatal);
        assert_eq!(classify_errno(libc::EPERM), ErrorClass::Fatal);
    }

    #[test]
    fn display_names_family_kind_and_reason() {
        let e = KernelError {
            family: Family::Ipvs,
            kind: "NEW_SERVICE",
            errno: libc::EEXIST,
            code: -libc::EEXIST,
            message: None,
            echo: Vec::new(),
        };
        assert_eq!(
            e.to_string(),
            "ipvs NEW_SERVICE failed: File exists (os error 17)"
        );
        let e = KernelError {
            errno: 4103,
            code: -4103,
            family: Family::Ipset,
            kind: "ADD",
            message: Some("x".into()),
            echo: Vec::new(),
        };
        assert_eq!(e.to_string(), "ipset ADD failed: ipset error 4103 (x)");
    }
}
