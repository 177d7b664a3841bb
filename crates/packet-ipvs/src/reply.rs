//! Typed readers for kernel replies.

use netlink_packet_core::{DecodeError, ErrorContext};

use crate::{
    cmd_attr::IpvsCmdAttr,
    dest_attr::DestAttr,
    message::IpvsMessage,
    model::{Destination, Info, Service, Timeouts},
    service_attr::SvcAttr,
};

impl IpvsMessage {
    /// The attributes of the first SERVICE nest, if any.
    pub fn service_attrs(&self) -> Option<&[SvcAttr]> {
        self.attrs.iter().find_map(|attr| match attr {
            IpvsCmdAttr::Service(nest) => Some(nest.attrs.as_slice()),
            _ => None,
        })
    }

    /// The attributes of the first DEST nest, if any.
    pub fn dest_attrs(&self) -> Option<&[DestAttr]> {
        self.attrs.iter().find_map(|attr| match attr {
            IpvsCmdAttr::Dest(nest) => Some(nest.attrs.as_slice()),
            _ => None,
        })
    }

    /// The service of a GET_SERVICE reply or dump part.
    pub fn service(&self) -> Result<Service, DecodeError> {
        let attrs = self.service_attrs().ok_or_else(|| {
            DecodeError::from(format!("IPVS {} message without SERVICE", self.cmd))
        })?;
        Service::from_attrs(attrs).context("invalid IPVS_CMD_ATTR_SERVICE")
    }

    /// The destination of a GET_DEST dump part.
    pub fn destination(&self) -> Result<Destination, DecodeError> {
        let attrs = self
            .dest_attrs()
            .ok_or_else(|| DecodeError::from(format!("IPVS {} message without DEST", self.cmd)))?;
        Destination::from_attrs(attrs).context("invalid IPVS_CMD_ATTR_DEST")
    }

    /// The GET_INFO reply (command SET_INFO).
    pub fn info(&self) -> Result<Info, DecodeError> {
        let mut version = None;
        let mut conn_tab_size = None;
        for attr in &self.attrs {
            match attr {
                IpvsCmdAttr::InfoVersion(v) => version = Some(*v),
                IpvsCmdAttr::InfoConnTabSize(v) => conn_tab_size = Some(*v),
                _ => {}
            }
        }
        match (version, conn_tab_size) {
            (Some(version), Some(conn_tab_size)) => Ok(Info {
                version,
                conn_tab_size,
            }),
            _ => Err(DecodeError::from(format!(
                "IPVS {} message lacks IPVS_INFO_ATTR_VERSION or CONN_TAB_SIZE",
                self.cmd
            ))),
        }
    }

    /// The GET_CONFIG reply (command SET_CONFIG). A timeout the kernel
    /// leaves out (its protocol is compiled out, `ip_vs_genl_get_cmd`)
    /// reads as 0, which is also what "unchanged" means in SET_CONFIG.
    /// A message with none of the three is not a config reply: error.
    pub fn timeouts(&self) -> Result<Timeouts, DecodeError> {
        let mut timeouts = Timeouts::default();
        let mut seen = false;
        for attr in &self.attrs {
            match attr {
                IpvsCmdAttr::TimeoutTcp(v) => timeouts.tcp = *v,
                IpvsCmdAttr::TimeoutTcpFin(v) => timeouts.tcp_fin = *v,
                IpvsCmdAttr::TimeoutUdp(v) => timeouts.udp = *v,
                _ => continue,
            }
            seen = true;
        }
        if !seen {
            return Err(DecodeError::from(format!(
                "IPVS {} message without timeouts",
                self.cmd
            )));
        }
        Ok(timeouts)
    }
}
