//! Request builders. Each one produces exactly what the `ipset` 7.x tool
//! sends for the equivalent command line (checked against captures), so the
//! messages compare equal to golden bytes. Send them with
//! [`IpsetMessage::nlmsg_flags`].

use crate::{
    attribute::IpsetAttr,
    cmd::IpsetCmd,
    constants::*,
    data::DataAttr,
    entry::Entry,
    message::IpsetMessage,
    set_type::{CreateOptions, SetFamily, SetType},
};

fn protocol() -> IpsetAttr {
    IpsetAttr::Protocol(IPSET_PROTOCOL)
}

fn named(cmd: IpsetCmd, name: &str) -> IpsetMessage {
    IpsetMessage::new(cmd, vec![protocol(), IpsetAttr::SetName(name.to_owned())])
}

fn maybe_named(cmd: IpsetCmd, name: Option<&str>) -> IpsetMessage {
    match name {
        Some(name) => named(cmd, name),
        None => IpsetMessage::new(cmd, vec![protocol()]),
    }
}

impl IpsetMessage {
    /// Protocol version handshake (every `ipset` invocation starts with it).
    /// The reply carries the kernel's PROTOCOL and PROTOCOL_MIN:
    /// see [`IpsetMessage::protocol_reply`].
    pub fn protocol() -> Self {
        IpsetMessage::new(IpsetCmd::Protocol, vec![protocol()])
    }

    /// The revisions the kernel supports for a type (what `ipset create`
    /// asks first). Reply: [`IpsetMessage::type_reply`].
    pub fn type_query(set_type: &SetType, family: SetFamily) -> Self {
        IpsetMessage::new(
            IpsetCmd::Type,
            vec![
                protocol(),
                IpsetAttr::TypeName(set_type.type_name().to_owned()),
                IpsetAttr::Family(family.into()),
            ],
        )
    }

    /// `ipset create NAME TYPE family F [range A-B] [hashsize N] [maxelem N]
    /// [comment]`, at `revision` (the tool uses the maximum the TYPE query
    /// returned). bitmap:port takes `SetFamily::Unspec`.
    pub fn create(
        name: &str,
        set_type: &SetType,
        family: SetFamily,
        revision: u8,
        options: &CreateOptions,
    ) -> Self {
        // Ascending attribute ids, as libipset's `addattr_create` walks them.
        let mut data = Vec::new();
        if let Some((from, to)) = options.port_range {
            data.push(DataAttr::Port(from));
            data.push(DataAttr::PortTo(to));
        }
        if options.comment {
            data.push(DataAttr::CadtFlags(IPSET_FLAG_WITH_COMMENT));
        }
        if let Some(hash_size) = options.hash_size {
            data.push(DataAttr::HashSize(hash_size));
        }
        if let Some(max_elem) = options.max_elem {
            data.push(DataAttr::MaxElem(max_elem));
        }
        IpsetMessage::new(
            IpsetCmd::Create,
            vec![
                protocol(),
                IpsetAttr::SetName(name.to_owned()),
                IpsetAttr::TypeName(set_type.type_name().to_owned()),
                IpsetAttr::Revision(revision),
                IpsetAttr::Family(family.into()),
                IpsetAttr::Data(data),
            ],
        )
    }

    /// `ipset destroy NAME`.
    pub fn destroy(name: &str) -> Self {
        named(IpsetCmd::Destroy, name)
    }

    /// `ipset flush NAME`.
    pub fn flush(name: &str) -> Self {
        named(IpsetCmd::Flush, name)
    }

    /// `ipset rename FROM TO`.
    pub fn rename(from: &str, to: &str) -> Self {
        let mut message = named(IpsetCmd::Rename, from);
        message.attrs.push(IpsetAttr::TypeName(to.to_owned()));
        message
    }

    /// `ipset swap A B`.
    pub fn swap(a: &str, b: &str) -> Self {
        let mut message = named(IpsetCmd::Swap, a);
        message.attrs.push(IpsetAttr::TypeName(b.to_owned()));
        message
    }

    /// `ipset list [NAME]` (a dump; replies: [`IpsetMessage::set_info`]).
    pub fn list(name: Option<&str>) -> Self {
        maybe_named(IpsetCmd::List, name)
    }

    /// `ipset -n list [NAME]` / `ipset list -t [NAME]`: a LIST with
    /// `IPSET_ATTR_FLAGS` (`IPSET_FLAG_LIST_SETNAME` for names only,
    /// `IPSET_FLAG_LIST_HEADER` for headers without members), sent after
    /// SETNAME as libipset's `build_msg` does.
    pub fn list_with_flags(name: Option<&str>, flags: u32) -> Self {
        let mut message = maybe_named(IpsetCmd::List, name);
        message.attrs.push(IpsetAttr::Flags(flags));
        message
    }

    /// `ipset save [NAME]` (a dump; the kernel answers with LIST messages).
    pub fn save(name: Option<&str>) -> Self {
        maybe_named(IpsetCmd::Save, name)
    }

    /// The type, family and revision of a set (the tool sends it before
    /// ADD/DEL/TEST to learn how to parse the element).
    pub fn header(name: &str) -> Self {
        named(IpsetCmd::Header, name)
    }

    /// The kernel index of a set; reply: [`IpsetMessage::index`].
    pub fn get_byname(name: &str) -> Self {
        named(IpsetCmd::GetByName, name)
    }

    /// The name of the set with a kernel index.
    pub fn get_byindex(index: u16) -> Self {
        IpsetMessage::new(
            IpsetCmd::GetByIndex,
            vec![protocol(), IpsetAttr::Index(index)],
        )
    }

    /// `ipset add NAME ELEMENT` (one element, not in restore mode: the tool
    /// then sends `LINENO` 0 inside DATA and none at command level).
    pub fn add(name: &str, entry: &Entry) -> Self {
        single_adt(IpsetCmd::Add, name, entry)
    }

    /// `ipset del NAME ELEMENT`.
    pub fn del(name: &str, entry: &Entry) -> Self {
        single_adt(IpsetCmd::Del, name, entry)
    }

    /// `ipset test NAME ELEMENT`. "Not in set" comes back as
    /// `-IPSET_ERR_EXIST`. The tool sends no LINENO for TEST.
    pub fn test(name: &str, entry: &Entry) -> Self {
        let mut message = named(IpsetCmd::Test, name);
        message.attrs.push(IpsetAttr::Data(entry.to_data_attrs()));
        message
    }
}

fn single_adt(cmd: IpsetCmd, name: &str, entry: &Entry) -> IpsetMessage {
    let mut data = entry.to_data_attrs();
    data.push(DataAttr::LineNo(0));
    let mut message = named(cmd, name);
    message.attrs.push(IpsetAttr::Data(data));
    message
}
