//! `enum ipset_cmd`: the low byte of the `nlmsg_type`.

use std::fmt;

use crate::constants::*;

/// An ipset command (`IPSET_CMD_*`). The kernel answers LIST *and* SAVE
/// dumps with messages of type LIST (`ip_set_dump_do` always calls
/// `start_msg(.., IPSET_CMD_LIST)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpsetCmd {
    Protocol,
    Create,
    Destroy,
    Flush,
    Rename,
    Swap,
    List,
    Save,
    Add,
    Del,
    Test,
    Header,
    Type,
    GetByName,
    GetByIndex,
    Other(u8),
}

impl IpsetCmd {
    /// ADD, DEL and TEST carry element ("ADT") data in `IPSET_ATTR_DATA`;
    /// every other command carries create/header data there.
    pub fn is_adt(self) -> bool {
        matches!(self, IpsetCmd::Add | IpsetCmd::Del | IpsetCmd::Test)
    }
}

impl From<u8> for IpsetCmd {
    fn from(value: u8) -> Self {
        match value {
            IPSET_CMD_PROTOCOL => Self::Protocol,
            IPSET_CMD_CREATE => Self::Create,
            IPSET_CMD_DESTROY => Self::Destroy,
            IPSET_CMD_FLUSH => Self::Flush,
            IPSET_CMD_RENAME => Self::Rename,
            IPSET_CMD_SWAP => Self::Swap,
            IPSET_CMD_LIST => Self::List,
            IPSET_CMD_SAVE => Self::Save,
            IPSET_CMD_ADD => Self::Add,
            IPSET_CMD_DEL => Self::Del,
            IPSET_CMD_TEST => Self::Test,
            IPSET_CMD_HEADER => Self::Header,
            IPSET_CMD_TYPE => Self::Type,
            IPSET_CMD_GET_BYNAME => Self::GetByName,
            IPSET_CMD_GET_BYINDEX => Self::GetByIndex,
            other => Self::Other(other),
        }
    }
}

impl From<IpsetCmd> for u8 {
    fn from(value: IpsetCmd) -> Self {
        match value {
            IpsetCmd::Protocol => IPSET_CMD_PROTOCOL,
            IpsetCmd::Create => IPSET_CMD_CREATE,
            IpsetCmd::Destroy => IPSET_CMD_DESTROY,
            IpsetCmd::Flush => IPSET_CMD_FLUSH,
            IpsetCmd::Rename => IPSET_CMD_RENAME,
            IpsetCmd::Swap => IPSET_CMD_SWAP,
            IpsetCmd::List => IPSET_CMD_LIST,
            IpsetCmd::Save => IPSET_CMD_SAVE,
            IpsetCmd::Add => IPSET_CMD_ADD,
            IpsetCmd::Del => IPSET_CMD_DEL,
            IpsetCmd::Test => IPSET_CMD_TEST,
            IpsetCmd::Header => IPSET_CMD_HEADER,
            IpsetCmd::Type => IPSET_CMD_TYPE,
            IpsetCmd::GetByName => IPSET_CMD_GET_BYNAME,
            IpsetCmd::GetByIndex => IPSET_CMD_GET_BYINDEX,
            IpsetCmd::Other(other) => other,
        }
    }
}

impl fmt::Display for IpsetCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            IpsetCmd::Protocol => "protocol",
            IpsetCmd::Create => "create",
            IpsetCmd::Destroy => "destroy",
            IpsetCmd::Flush => "flush",
            IpsetCmd::Rename => "rename",
            IpsetCmd::Swap => "swap",
            IpsetCmd::List => "list",
            IpsetCmd::Save => "save",
            IpsetCmd::Add => "add",
            IpsetCmd::Del => "del",
            IpsetCmd::Test => "test",
            IpsetCmd::Header => "header",
            IpsetCmd::Type => "type",
            IpsetCmd::GetByName => "get_byname",
            IpsetCmd::GetByIndex => "get_byindex",
            IpsetCmd::Other(other) => return write!(f, "cmd {other}"),
        };
        f.write_str(name)
    }
}
