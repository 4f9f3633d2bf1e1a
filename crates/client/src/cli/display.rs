//! How keys, values and ids look on a terminal, and how ids are read back.
//!
//! In: raw bytes and ids. Out: printable text — UTF-8 as is, anything else
//! escaped — and ids in hexadecimal as etcdctl shows them; parsing accepts
//! what it prints (hex, with or without `0x`).

/// Bytes as text: printable UTF-8 unchanged, anything else escaped (`\x00`).
pub fn show_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => bytes.escape_ascii().to_string(),
    }
}

pub fn hex_id(id: u64) -> String {
    format!("{id:x}")
}

/// A member or lease id as printed by `haven` and etcdctl: hexadecimal.
pub fn parse_hex_id(text: &str) -> Result<u64, String> {
    let digits = text.trim().trim_start_matches("0x");
    u64::from_str_radix(digits, 16).map_err(|_| {
        format!("`{text}` is not an id: ids are hexadecimal as `haven member ls` and `haven lease ls` print them")
    })
}

/// A lease id: hexadecimal, positive as an etcd int64.
pub fn parse_lease_id(text: &str) -> Result<i64, String> {
    let id = parse_hex_id(text)?;
    i64::try_from(id).map_err(|_| format!("`{text}` is too large for a lease id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_print_as_text_or_escaped() {
        assert_eq!(show_bytes(b"hello world"), "hello world");
        assert_eq!(show_bytes("héllo".as_bytes()), "héllo");
        assert_eq!(show_bytes(b"a\x00b"), "a\\x00b");
        assert_eq!(show_bytes(b"\xff"), "\\xff");
        assert_eq!(show_bytes(b"line\n"), "line\\n");
    }

    #[test]
    fn ids_round_trip_through_hex() {
        assert_eq!(parse_hex_id(&hex_id(13644259998761102652)).unwrap(), 13644259998761102652);
        assert_eq!(parse_hex_id("0x2a").unwrap(), 42);
        assert!(parse_hex_id("xyz").unwrap_err().contains("hexadecimal"));
        assert!(parse_lease_id("ffffffffffffffff").is_err());
        assert_eq!(parse_lease_id("694d7a").unwrap(), 0x694d7a);
    }
}
