//! How single fields travel in etcd's JSON (proto3 JSON as grpc-gateway's
//! jsonpb writes and reads it).
//!
//! In: Rust field values, or JSON values as clients send them. Out: the
//! JSON etcd writes (64-bit integers as decimal strings, bytes as standard
//! base64, enums by name) and, on input, what jsonpb also accepts: integers
//! as numbers or strings, enums by name or number, `null` for "unset".
//! Used through `#[serde(with = ...)]` and `skip_serializing_if`, which
//! omit default values exactly as proto3 JSON does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use std::fmt;

pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `null` and absent both mean the default, as in jsonpb.
pub(crate) fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An integer field of any width: written as a decimal string, read from a
/// string or a number.
pub mod int {
    use super::*;

    pub fn serialize<S: Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i128> + Default,
    {
        let wide = d.deserialize_any(IntVisitor)?;
        match wide {
            None => Ok(T::default()),
            Some(v) => T::try_from(v).map_err(|_| de::Error::custom(format!("integer {v} out of range"))),
        }
    }
}

struct IntVisitor;

impl<'de> Visitor<'de> for IntVisitor {
    type Value = Option<i128>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer, as a number or a decimal string")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(format!("cannot read number {v} as an integer")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.parse::<i128>().map(Some).map_err(|_| E::custom(format!("cannot read string {v:?} as an integer")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A bytes field: standard base64 with padding.
pub(crate) mod b64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => decode(&s).map_err(de::Error::custom),
        }
    }

    pub(crate) fn decode(s: &str) -> Result<Vec<u8>, String> {
        STANDARD.decode(s).map_err(|e| format!("illegal base64 data: {e}"))
    }
}

/// A repeated bytes field.
pub(crate) mod b64_list {
    use super::*;
    use serde::ser::SerializeSeq;

    pub(crate) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for item in v {
            seq.serialize_element(&STANDARD.encode(item))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let list: Vec<String> = nullable(d)?;
        list.iter().map(|s| b64::decode(s).map_err(de::Error::custom)).collect()
    }
}

/// A proto enum: its names in declaration order, index = wire number.
pub(crate) trait ProtoEnum: Sized + Copy + Default + 'static {
    const NAME: &'static str;
    const VARIANTS: &'static [(&'static str, Self)];

    fn proto_name(self) -> &'static str;
}

pub(crate) mod proto_enum {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: ProtoEnum>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.proto_name())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: ProtoEnum>(d: D) -> Result<T, D::Error> {
        from_value(serde_json::Value::deserialize(d)?).map_err(de::Error::custom)
    }

    pub(crate) fn from_value<T: ProtoEnum>(v: serde_json::Value) -> Result<T, String> {
        let found = match &v {
            serde_json::Value::Null => return Ok(T::default()),
            serde_json::Value::String(name) => T::VARIANTS.iter().find(|(n, _)| n == name),
            serde_json::Value::Number(n) => n.as_u64().and_then(|i| T::VARIANTS.get(usize::try_from(i).ok()?)),
            _ => None,
        };
        found.map(|&(_, e)| e).ok_or_else(|| format!("unknown value {v} for enum {}", T::NAME))
    }
}

/// A repeated enum field.
pub(crate) mod proto_enum_list {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: ProtoEnum>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|e| e.proto_name()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: ProtoEnum>(d: D) -> Result<Vec<T>, D::Error> {
        let list: Vec<serde_json::Value> = nullable(d)?;
        list.into_iter().map(|v| proto_enum::from_value(v).map_err(de::Error::custom)).collect()
    }
}

/// Declares a proto enum with its wire names, in wire-number order.
macro_rules! proto_enum_type {
    ($(#[$m:meta])* $name:ident = $proto:literal { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub enum $name {
            #[default]
            $($variant),+
        }

        impl $crate::json::fields::ProtoEnum for $name {
            const NAME: &'static str = $proto;
            const VARIANTS: &'static [(&'static str, $name)] = &[$(($wire, $name::$variant)),+];

            fn proto_name(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }
    };
}
pub(crate) use proto_enum_type;
