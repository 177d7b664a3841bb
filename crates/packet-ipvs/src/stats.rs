//! Service and destination counters (`IPVS_SVC_ATTR_STATS{,64}`,
//! `IPVS_DEST_ATTR_STATS{,64}`).
//!
//! Under `STATS` the kernel writes u32 counters except the two byte
//! counters, which are u64 (`ip_vs_genl_fill_stats`); under `STATS64`
//! everything is u64 (`ip_vs_genl_fill_stats64`). Both use
//! `nla_put_u64_64bit`, which may insert a zero-length `PAD` attribute to
//! align the next u64 on architectures without cheap unaligned access.

use netlink_packet_core::{
    parse_u32, parse_u64, DecodeError, DefaultNla, ErrorContext, Nla, NlaBuffer, Parseable,
};

pub const IPVS_STATS_ATTR_UNSPEC: u16 = 0;
pub const IPVS_STATS_ATTR_CONNS: u16 = 1;
pub const IPVS_STATS_ATTR_INPKTS: u16 = 2;
pub const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
pub const IPVS_STATS_ATTR_INBYTES: u16 = 4;
pub const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
pub const IPVS_STATS_ATTR_CPS: u16 = 6;
pub const IPVS_STATS_ATTR_INPPS: u16 = 7;
pub const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
pub const IPVS_STATS_ATTR_INBPS: u16 = 9;
pub const IPVS_STATS_ATTR_OUTBPS: u16 = 10;
pub const IPVS_STATS_ATTR_PAD: u16 = 11;

/// One attribute inside a 32-bit `STATS` nest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatsAttr {
    Conns(u32),
    InPkts(u32),
    OutPkts(u32),
    InBytes(u64),
    OutBytes(u64),
    Cps(u32),
    InPps(u32),
    OutPps(u32),
    InBps(u32),
    OutBps(u32),
    Pad,
    Other(DefaultNla),
}

impl Nla for StatsAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::InBytes(_) | Self::OutBytes(_) => 8,
            Self::Pad => 0,
            Self::Other(nla) => nla.value_len(),
            _ => 4,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Conns(_) => IPVS_STATS_ATTR_CONNS,
            Self::InPkts(_) => IPVS_STATS_ATTR_INPKTS,
            Self::OutPkts(_) => IPVS_STATS_ATTR_OUTPKTS,
            Self::InBytes(_) => IPVS_STATS_ATTR_INBYTES,
            Self::OutBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            Self::Cps(_) => IPVS_STATS_ATTR_CPS,
            Self::InPps(_) => IPVS_STATS_ATTR_INPPS,
            Self::OutPps(_) => IPVS_STATS_ATTR_OUTPPS,
            Self::InBps(_) => IPVS_STATS_ATTR_INBPS,
            Self::OutBps(_) => IPVS_STATS_ATTR_OUTBPS,
            Self::Pad => IPVS_STATS_ATTR_PAD,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Conns(v)
            | Self::InPkts(v)
            | Self::OutPkts(v)
            | Self::Cps(v)
            | Self::InPps(v)
            | Self::OutPps(v)
            | Self::InBps(v)
            | Self::OutBps(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::InBytes(v) | Self::OutBytes(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Pad => {}
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for StatsAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => Self::Conns(parse_u32(payload).context("STATS_ATTR_CONNS")?),
            IPVS_STATS_ATTR_INPKTS => {
                Self::InPkts(parse_u32(payload).context("STATS_ATTR_INPKTS")?)
            }
            IPVS_STATS_ATTR_OUTPKTS => {
                Self::OutPkts(parse_u32(payload).context("STATS_ATTR_OUTPKTS")?)
            }
            IPVS_STATS_ATTR_INBYTES => {
                Self::InBytes(parse_u64(payload).context("STATS_ATTR_INBYTES")?)
            }
            IPVS_STATS_ATTR_OUTBYTES => {
                Self::OutBytes(parse_u64(payload).context("STATS_ATTR_OUTBYTES")?)
            }
            IPVS_STATS_ATTR_CPS => Self::Cps(parse_u32(payload).context("STATS_ATTR_CPS")?),
            IPVS_STATS_ATTR_INPPS => Self::InPps(parse_u32(payload).context("STATS_ATTR_INPPS")?),
            IPVS_STATS_ATTR_OUTPPS => {
                Self::OutPps(parse_u32(payload).context("STATS_ATTR_OUTPPS")?)
            }
            IPVS_STATS_ATTR_INBPS => Self::InBps(parse_u32(payload).context("STATS_ATTR_INBPS")?),
            IPVS_STATS_ATTR_OUTBPS => {
                Self::OutBps(parse_u32(payload).context("STATS_ATTR_OUTBPS")?)
            }
            IPVS_STATS_ATTR_PAD if payload.is_empty() => Self::Pad,
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// One attribute inside a 64-bit `STATS64` nest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stats64Attr {
    Conns(u64),
    InPkts(u64),
    OutPkts(u64),
    InBytes(u64),
    OutBytes(u64),
    Cps(u64),
    InPps(u64),
    OutPps(u64),
    InBps(u64),
    OutBps(u64),
    Pad,
    Other(DefaultNla),
}

impl Nla for Stats64Attr {
    fn value_len(&self) -> usize {
        match self {
            Self::Pad => 0,
            Self::Other(nla) => nla.value_len(),
            _ => 8,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Conns(_) => IPVS_STATS_ATTR_CONNS,
            Self::InPkts(_) => IPVS_STATS_ATTR_INPKTS,
            Self::OutPkts(_) => IPVS_STATS_ATTR_OUTPKTS,
            Self::InBytes(_) => IPVS_STATS_ATTR_INBYTES,
            Self::OutBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            Self::Cps(_) => IPVS_STATS_ATTR_CPS,
            Self::InPps(_) => IPVS_STATS_ATTR_INPPS,
            Self::OutPps(_) => IPVS_STATS_ATTR_OUTPPS,
            Self::InBps(_) => IPVS_STATS_ATTR_INBPS,
            Self::OutBps(_) => IPVS_STATS_ATTR_OUTBPS,
            Self::Pad => IPVS_STATS_ATTR_PAD,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Conns(v)
            | Self::InPkts(v)
            | Self::OutPkts(v)
            | Self::InBytes(v)
            | Self::OutBytes(v)
            | Self::Cps(v)
            | Self::InPps(v)
            | Self::OutPps(v)
            | Self::InBps(v)
            | Self::OutBps(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Pad => {}
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for Stats64Attr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        let value = |name: &str| parse_u64(payload).with_context(|| format!("STATS64 {name}"));
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => Self::Conns(value("CONNS")?),
            IPVS_STATS_ATTR_INPKTS => Self::InPkts(value("INPKTS")?),
            IPVS_STATS_ATTR_OUTPKTS => Self::OutPkts(value("OUTPKTS")?),
            IPVS_STATS_ATTR_INBYTES => Self::InBytes(value("INBYTES")?),
            IPVS_STATS_ATTR_OUTBYTES => Self::OutBytes(value("OUTBYTES")?),
            IPVS_STATS_ATTR_CPS => Self::Cps(value("CPS")?),
            IPVS_STATS_ATTR_INPPS => Self::InPps(value("INPPS")?),
            IPVS_STATS_ATTR_OUTPPS => Self::OutPps(value("OUTPPS")?),
            IPVS_STATS_ATTR_INBPS => Self::InBps(value("INBPS")?),
            IPVS_STATS_ATTR_OUTBPS => Self::OutBps(value("OUTBPS")?),
            IPVS_STATS_ATTR_PAD if payload.is_empty() => Self::Pad,
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// Counters of a service or destination, widened to u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl Stats {
    pub fn from_stats(attrs: &[StatsAttr]) -> Self {
        let mut stats = Self::default();
        for attr in attrs {
            match *attr {
                StatsAttr::Conns(v) => stats.conns = v.into(),
                StatsAttr::InPkts(v) => stats.inpkts = v.into(),
                StatsAttr::OutPkts(v) => stats.outpkts = v.into(),
                StatsAttr::InBytes(v) => stats.inbytes = v,
                StatsAttr::OutBytes(v) => stats.outbytes = v,
                StatsAttr::Cps(v) => stats.cps = v.into(),
                StatsAttr::InPps(v) => stats.inpps = v.into(),
                StatsAttr::OutPps(v) => stats.outpps = v.into(),
                StatsAttr::InBps(v) => stats.inbps = v.into(),
                StatsAttr::OutBps(v) => stats.outbps = v.into(),
                StatsAttr::Pad | StatsAttr::Other(_) => {}
            }
        }
        stats
    }

    pub fn from_stats64(attrs: &[Stats64Attr]) -> Self {
        let mut stats = Self::default();
        for attr in attrs {
            match *attr {
                Stats64Attr::Conns(v) => stats.conns = v,
                Stats64Attr::InPkts(v) => stats.inpkts = v,
                Stats64Attr::OutPkts(v) => stats.outpkts = v,
                Stats64Attr::InBytes(v) => stats.inbytes = v,
                Stats64Attr::OutBytes(v) => stats.outbytes = v,
                Stats64Attr::Cps(v) => stats.cps = v,
                Stats64Attr::InPps(v) => stats.inpps = v,
                Stats64Attr::OutPps(v) => stats.outpps = v,
                Stats64Attr::InBps(v) => stats.inbps = v,
                Stats64Attr::OutBps(v) => stats.outbps = v,
                Stats64Attr::Pad | Stats64Attr::Other(_) => {}
            }
        }
        stats
    }

    /// The `STATS64` nest the kernel would write for these counters.
    pub fn to_stats64(&self) -> Vec<Stats64Attr> {
        vec![
            Stats64Attr::Conns(self.conns),
            Stats64Attr::InPkts(self.inpkts),
            Stats64Attr::OutPkts(self.outpkts),
            Stats64Attr::InBytes(self.inbytes),
            Stats64Attr::OutBytes(self.outbytes),
            Stats64Attr::Cps(self.cps),
            Stats64Attr::InPps(self.inpps),
            Stats64Attr::OutPps(self.outpps),
            Stats64Attr::InBps(self.inbps),
            Stats64Attr::OutBps(self.outbps),
        ]
    }
}
