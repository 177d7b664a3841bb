//! Reading replies: PROTOCOL, TYPE, GET_BYNAME and LIST/SAVE dumps.

use netlink_packet_core::DecodeError;

use crate::{
    attribute::IpsetAttr, cmd::IpsetCmd, constants::*, data::DataAttr, entry::Entry,
    message::IpsetMessage, set_type::SetFamily,
};

/// One set as `ipset list` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetInfo {
    pub name: String,
    /// Empty when the dump only named the set (`IPSET_FLAG_LIST_SETNAME`).
    pub type_name: String,
    pub revision: u8,
    pub family: u8,
    /// The kernel index (sent with protocol ≥ 7).
    pub index: Option<u16>,
    pub hash_size: Option<u32>,
    pub max_elem: Option<u32>,
    /// bitmap:port `range FROM-TO`.
    pub port_range: Option<(u16, u16)>,
    pub references: u32,
    /// Number of entries as counted by the kernel.
    pub elements: u32,
    pub mem_size: u32,
    /// Created with the comment extension.
    pub comment: bool,
    pub entries: Vec<Entry>,
}

impl SetInfo {
    pub fn set_family(&self) -> SetFamily {
        SetFamily::from(self.family)
    }

    fn apply_header(&mut self, data: &[DataAttr]) {
        for attr in data {
            match attr {
                DataAttr::HashSize(v) => self.hash_size = Some(*v),
                DataAttr::MaxElem(v) => self.max_elem = Some(*v),
                DataAttr::Port(from) => {
                    let to = self.port_range.map_or(*from, |(_, to)| to);
                    self.port_range = Some((*from, to));
                }
                DataAttr::PortTo(to) => {
                    let from = self.port_range.map_or(0, |(from, _)| from);
                    self.port_range = Some((from, *to));
                }
                DataAttr::References(v) => self.references = *v,
                DataAttr::Elements(v) => self.elements = *v,
                DataAttr::MemSize(v) => self.mem_size = *v,
                DataAttr::CadtFlags(flags) => self.comment = flags & IPSET_FLAG_WITH_COMMENT != 0,
                _ => {}
            }
        }
    }
}

/// What one LIST message contributes: `ip_set_dump_do` (ip_set_core.c)
/// puts the header (TYPENAME, FAMILY, REVISION, INDEX, DATA) only in the
/// first message of a set, and continues long member lists in further
/// messages carrying just PROTOCOL, SETNAME and ADT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPart {
    /// The set; header fields are defaults when `has_header` is false.
    pub set: SetInfo,
    pub has_header: bool,
}

impl IpsetMessage {
    fn expect_cmd(&self, expected: &[IpsetCmd]) -> Result<(), DecodeError> {
        if expected.contains(&self.cmd) {
            Ok(())
        } else {
            Err(format!("expected an ipset {:?} reply, got {}", expected, self.cmd).into())
        }
    }

    /// The set and members one LIST (or SAVE) reply message carries.
    pub fn set_info(&self) -> Result<ListPart, DecodeError> {
        self.expect_cmd(&[IpsetCmd::List, IpsetCmd::Save])?;
        let mut set = SetInfo::default();
        let mut has_name = false;
        let mut has_header = false;
        for attr in &self.attrs {
            match attr {
                IpsetAttr::SetName(name) => {
                    set.name = name.clone();
                    has_name = true;
                }
                IpsetAttr::TypeName(type_name) => {
                    set.type_name = type_name.clone();
                    has_header = true;
                }
                IpsetAttr::Revision(revision) => set.revision = *revision,
                IpsetAttr::Family(family) => set.family = *family,
                IpsetAttr::Index(index) => set.index = Some(*index),
                IpsetAttr::Data(data) => set.apply_header(data),
                IpsetAttr::Adt(elements) => set
                    .entries
                    .extend(elements.iter().map(|data| Entry::from_data_attrs(data))),
                _ => {}
            }
        }
        if !has_name {
            return Err("ipset LIST reply without IPSET_ATTR_SETNAME".into());
        }
        Ok(ListPart { set, has_header })
    }

    /// `(IPSET_ATTR_PROTOCOL, IPSET_ATTR_PROTOCOL_MIN)` of a PROTOCOL reply.
    /// Kernels older than protocol 7 send no minimum; it is then the maximum.
    pub fn protocol_reply(&self) -> Result<(u8, u8), DecodeError> {
        self.expect_cmd(&[IpsetCmd::Protocol])?;
        let max = self
            .attrs
            .iter()
            .find_map(|a| match a {
                IpsetAttr::Protocol(v) => Some(*v),
                _ => None,
            })
            .ok_or_else(|| DecodeError::from("PROTOCOL reply without IPSET_ATTR_PROTOCOL"))?;
        let min = self
            .attrs
            .iter()
            .find_map(|a| match a {
                IpsetAttr::ProtocolMin(v) => Some(*v),
                _ => None,
            })
            .unwrap_or(max);
        Ok((max, min))
    }

    /// `(IPSET_ATTR_REVISION, IPSET_ATTR_REVISION_MIN)` of a TYPE reply: the
    /// newest and oldest revision the kernel has for the type.
    pub fn type_reply(&self) -> Result<(u8, u8), DecodeError> {
        self.expect_cmd(&[IpsetCmd::Type])?;
        let revision = self
            .attrs
            .iter()
            .find_map(|a| match a {
                IpsetAttr::Revision(v) => Some(*v),
                _ => None,
            })
            .ok_or_else(|| DecodeError::from("TYPE reply without IPSET_ATTR_REVISION"))?;
        let revision_min = self
            .attrs
            .iter()
            .find_map(|a| match a {
                IpsetAttr::ProtocolMin(v) => Some(*v),
                _ => None,
            })
            .unwrap_or(revision);
        Ok((revision, revision_min))
    }

    /// The set index of a GET_BYNAME reply.
    pub fn index(&self) -> Result<u16, DecodeError> {
        self.expect_cmd(&[IpsetCmd::GetByName, IpsetCmd::GetByIndex])?;
        self.attrs
            .iter()
            .find_map(|a| match a {
                IpsetAttr::Index(v) => Some(*v),
                _ => None,
            })
            .ok_or_else(|| DecodeError::from("reply without IPSET_ATTR_INDEX"))
    }
}

/// Joins the messages of one LIST/SAVE dump into whole sets, in dump order.
/// A message without a header continues the set of the same name that the
/// previous message described (its members did not fit one message).
pub fn merge_list_replies(
    replies: impl IntoIterator<Item = IpsetMessage>,
) -> Result<Vec<SetInfo>, DecodeError> {
    let mut sets: Vec<SetInfo> = Vec::new();
    for reply in replies {
        let ListPart { set, has_header } = reply.set_info()?;
        let continues_last = !has_header && sets.last().is_some_and(|last| last.name == set.name);
        if continues_last {
            if let Some(last) = sets.last_mut() {
                last.entries.extend(set.entries);
            }
        } else if !has_header && sets.iter().any(|s| s.name == set.name) {
            return Err(format!(
                "ipset LIST continuation for set {:?} arrived after another set",
                set.name
            )
            .into());
        } else {
            sets.push(set);
        }
    }
    Ok(sets)
}
