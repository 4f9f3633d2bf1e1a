//! serde adapters for etcd's JSON conventions (the protobuf JSON mapping).
//!
//! In: Rust fields. Out: etcd's wire forms — bytes as base64 strings, 64-bit
//! integers as decimal strings — and back. Readers accept a number where a
//! string is expected too, as etcd's own gateway does, so a server that
//! writes small integers as numbers still parses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use std::fmt;

/// `Vec<u8>` as one base64 string.
pub mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        STANDARD.decode(text.as_bytes()).map_err(|e| de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// `Vec<Vec<u8>>` as a list of base64 strings.
pub mod b64_list {
    use super::*;
    use serde::ser::SerializeSeq as _;

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&STANDARD.encode(bytes))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let list = Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default();
        list.iter()
            .map(|text| STANDARD.decode(text.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// A 64-bit integer as a decimal string; reads a string or a number.
pub mod int {
    use super::*;

    pub fn serialize<T: fmt::Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: TryFrom<i128> + Default,
        D: Deserializer<'de>,
    {
        let wide = deserializer.deserialize_any(IntVisitor)?;
        match wide {
            None => Ok(T::default()),
            Some(wide) => T::try_from(wide).map_err(|_| de::Error::custom(format!("integer {wide} out of range"))),
        }
    }

    struct IntVisitor;

    impl<'de> Visitor<'de> for IntVisitor {
        type Value = Option<i128>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or a decimal string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(i128::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(i128::from(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.parse::<i128>().map(Some).map_err(|_| E::custom(format!("`{v}` is not an integer")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
}

/// An optional 64-bit integer (a protobuf oneof member): present means set.
pub mod int_opt {
    use super::*;

    pub fn serialize<T: fmt::Display, S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.collect_str(value),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        T: TryFrom<i128> + Default,
        D: Deserializer<'de>,
    {
        super::int::deserialize(deserializer).map(Some)
    }
}

/// For `skip_serializing_if`: protobuf's JSON mapping omits default values.
pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Probe {
        #[serde(with = "super::b64", default)]
        key: Vec<u8>,
        #[serde(with = "super::int", default)]
        revision: i64,
        #[serde(with = "super::int", default)]
        id: u64,
        #[serde(with = "super::b64_list", default)]
        keys: Vec<Vec<u8>>,
    }

    #[test]
    fn writes_etcd_conventions() {
        let probe = Probe { key: b"foo".to_vec(), revision: -1, id: u64::MAX, keys: vec![b"a".to_vec()] };
        let text = serde_json::to_string(&probe).unwrap();
        assert_eq!(text, r#"{"key":"Zm9v","revision":"-1","id":"18446744073709551615","keys":["YQ=="]}"#);
        assert_eq!(serde_json::from_str::<Probe>(&text).unwrap(), probe);
    }

    #[test]
    fn reads_numbers_strings_and_missing_fields() {
        let probe: Probe = serde_json::from_str(r#"{"revision":7,"id":"9"}"#).unwrap();
        assert_eq!(probe, Probe { revision: 7, id: 9, ..Probe::default() });
        assert!(serde_json::from_str::<Probe>(r#"{"id":"-1"}"#).is_err(), "u64 refuses negatives");
        assert!(serde_json::from_str::<Probe>(r#"{"key":"not base64!"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"revision":"x"}"#).is_err());
    }
}
