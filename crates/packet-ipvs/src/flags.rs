//! Virtual service flags and the `struct ip_vs_flags` wire value.

use std::{fmt, ops};

use netlink_packet_core::{parse_u32, DecodeError};

pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;
/// Kernel-internal: set on every service once it is hashed into the table.
pub const IP_VS_SVC_F_HASHED: u32 = 0x0002;
pub const IP_VS_SVC_F_ONEPACKET: u32 = 0x0004;
pub const IP_VS_SVC_F_SCHED1: u32 = 0x0008;
pub const IP_VS_SVC_F_SCHED2: u32 = 0x0010;
pub const IP_VS_SVC_F_SCHED3: u32 = 0x0020;
pub const IP_VS_SVC_F_SCHED_SH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
pub const IP_VS_SVC_F_SCHED_SH_PORT: u32 = IP_VS_SVC_F_SCHED2;
// The mh scheduler reuses the same bits (newer `ip_vs.h`, not in 6.1's).
pub const IP_VS_SVC_F_SCHED_MH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
pub const IP_VS_SVC_F_SCHED_MH_PORT: u32 = IP_VS_SVC_F_SCHED2;

/// The `flags` half of a service's `struct ip_vs_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    pub const EMPTY: Self = Self(0);
    pub const PERSISTENT: Self = Self(IP_VS_SVC_F_PERSISTENT);
    pub const HASHED: Self = Self(IP_VS_SVC_F_HASHED);
    pub const ONEPACKET: Self = Self(IP_VS_SVC_F_ONEPACKET);
    pub const SCHED1: Self = Self(IP_VS_SVC_F_SCHED1);
    pub const SCHED2: Self = Self(IP_VS_SVC_F_SCHED2);
    pub const SCHED3: Self = Self(IP_VS_SVC_F_SCHED3);

    pub fn bits(self) -> u32 {
        self.0
    }

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags without `other`'s bits.
    pub fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl ops::BitOr for ServiceFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for ServiceFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl From<u32> for ServiceFlags {
    fn from(value: u32) -> Self {
        Self(value)
    }
}

impl From<ServiceFlags> for u32 {
    fn from(flags: ServiceFlags) -> u32 {
        flags.0
    }
}

impl fmt::Display for ServiceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// `struct ip_vs_flags { __u32 flags; __u32 mask; }` in host byte order.
///
/// The kernel applies `new = (old & ~mask) | (flags & mask)`
/// (`ip_vs_genl_parse_service`); the real tools always send mask `~0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpvsFlags {
    pub flags: u32,
    pub mask: u32,
}

impl IpvsFlags {
    pub const LEN: usize = 8;

    /// `flags` with the all-ones mask that ipvsadm and moby/ipvs send.
    pub fn all(flags: ServiceFlags) -> Self {
        Self {
            flags: flags.0,
            mask: u32::MAX,
        }
    }

    pub fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        if payload.len() != Self::LEN {
            return Err(DecodeError::from(format!(
                "struct ip_vs_flags is {} bytes, got {}",
                Self::LEN,
                payload.len()
            )));
        }
        Ok(Self {
            flags: parse_u32(&payload[..4])?,
            mask: parse_u32(&payload[4..])?,
        })
    }

    pub fn emit(&self, buffer: &mut [u8]) {
        buffer[..4].copy_from_slice(&self.flags.to_ne_bytes());
        buffer[4..Self::LEN].copy_from_slice(&self.mask.to_ne_bytes());
    }
}
