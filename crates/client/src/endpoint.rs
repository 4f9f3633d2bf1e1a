//! Endpoint URLs as the operator writes them, checked before any request.
//!
//! In: text such as `http://127.0.0.1:2379` or `127.0.0.1:2379`. Out: a
//! normalised base URL (`http://host:port`, no trailing slash) or a
//! [`ClientError::BadEndpoint`] that says how to write one.

use crate::error::ClientError;
use reqwest::Url;
use std::net::IpAddr;

/// Checks and normalises one endpoint; a missing scheme means `http://`.
pub fn parse_endpoint(text: &str) -> Result<String, ClientError> {
    let trimmed = text.trim();
    let bad = |reason: &str| ClientError::BadEndpoint { endpoint: trimmed.to_owned(), reason: reason.to_owned() };
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let with_scheme = if trimmed.contains("://") { trimmed.to_owned() } else { format!("http://{trimmed}") };
    let url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() == "https" {
        return Err(bad("this build speaks plain http only (no TLS)"));
    }
    if url.scheme() != "http" {
        return Err(bad("the scheme must be http"));
    }
    let host = url.host_str().ok_or_else(|| bad("it has no host"))?;
    if !(url.path().is_empty() || url.path() == "/") || url.query().is_some() {
        return Err(bad("give only scheme, host and port, no path"));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(format!("http://{host}:{port}"))
}

/// Parses every endpoint of a list; refuses an empty list.
pub fn parse_endpoints(texts: &[String]) -> Result<Vec<String>, ClientError> {
    let endpoints: Vec<String> =
        texts.iter().filter(|t| !t.trim().is_empty()).map(|t| parse_endpoint(t)).collect::<Result<_, _>>()?;
    if endpoints.is_empty() {
        return Err(ClientError::NoEndpoints);
    }
    Ok(endpoints)
}

/// Whether a normalised endpoint is on this machine's loopback interface.
pub fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = Url::parse(endpoint) else { return false };
    let Some(host) = url.host_str() else { return false };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_what_operators_write() {
        assert_eq!(parse_endpoint("127.0.0.1:2379").unwrap(), "http://127.0.0.1:2379");
        assert_eq!(parse_endpoint(" http://localhost:2379/ ").unwrap(), "http://localhost:2379");
        assert_eq!(parse_endpoint("http://[::1]:2379").unwrap(), "http://[::1]:2379");
        assert_eq!(parse_endpoint("http://10.0.0.1").unwrap(), "http://10.0.0.1:80");
    }

    #[test]
    fn refuses_what_cannot_work_with_a_reason() {
        let reason = |text: &str| parse_endpoint(text).unwrap_err().to_string();
        assert!(reason("https://127.0.0.1:2379").contains("no TLS"));
        assert!(reason("http://127.0.0.1:2379/v3").contains("no path"));
        assert!(reason("ftp://x").contains("must be http"));
        assert!(matches!(parse_endpoints(&[" ".into()]), Err(ClientError::NoEndpoints)));
    }

    #[test]
    fn knows_loopback() {
        assert!(is_loopback("http://127.0.0.2:1"));
        assert!(is_loopback("http://localhost:1"));
        assert!(is_loopback("http://[::1]:1"));
        assert!(!is_loopback("http://10.0.0.1:1"));
        assert!(!is_loopback("http://example.invalid:1"));
    }
}
