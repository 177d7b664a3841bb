/// Declares an enum over a kernel integer value with `From` in both
/// directions and an `Other(..)` catch-all, so values newer kernels add
/// never fail to parse and always re-emit unchanged.
macro_rules! kernel_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate has no name for.
            Other($repr),
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                $( if value == $value { return Self::$variant; } )+
                Self::Other(value)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> $repr {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Other(other) => other,
                }
            }
        }
    };
}

pub(crate) use kernel_enum;

/// Declares a typed attribute enum: one variant per kernel attribute, each
/// with its codec (see `nla_util::Codec`), plus `Other(DefaultNla)` for
/// attributes this crate does not know (they parse, never fail, and
/// re-emit byte for byte).
macro_rules! attr_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $kind:ident => $codec:ty ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )+
            Other(::netlink_packet_core::DefaultNla),
        }

        impl ::netlink_packet_core::Nla for $name {
            fn value_len(&self) -> usize {
                match self {
                    $( $name::$variant(v) => <$codec as $crate::nla_util::Codec<$ty>>::len(v), )+
                    $name::Other(nla) => nla.value_len(),
                }
            }

            fn kind(&self) -> u16 {
                match self {
                    $( $name::$variant(_) => {
                        if <$codec as $crate::nla_util::Codec<$ty>>::NESTED {
                            $kind | ::netlink_packet_core::NLA_F_NESTED
                        } else {
                            $kind
                        }
                    } )+
                    $name::Other(nla) => nla.kind(),
                }
            }

            fn emit_value(&self, buffer: &mut [u8]) {
                match self {
                    $( $name::$variant(v) => <$codec as $crate::nla_util::Codec<$ty>>::emit(v, buffer), )+
                    $name::Other(nla) => nla.emit_value(buffer),
                }
            }
        }

        impl<'a, T: AsRef<[u8]> + ?Sized>
            ::netlink_packet_core::Parseable<::netlink_packet_core::NlaBuffer<&'a T>> for $name
        {
            fn parse(
                buf: &::netlink_packet_core::NlaBuffer<&'a T>,
            ) -> Result<Self, ::netlink_packet_core::DecodeError> {
                use ::netlink_packet_core::ErrorContext;
                let kind = buf.kind();
                let payload = buf.value();
                $(
                    if kind == $kind {
                        let value = <$codec as $crate::nla_util::Codec<$ty>>::parse(payload)
                            .context(concat!("invalid ", stringify!($kind)))?;
                        return Ok($name::$variant(value));
                    }
                )+
                Ok($name::Other(
                    <::netlink_packet_core::DefaultNla as ::netlink_packet_core::Parseable<_>>::parse(buf)?,
                ))
            }
        }
    };
}

pub(crate) use attr_enum;
