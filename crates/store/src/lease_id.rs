//! Lease identifiers.
//!
//! In: etcd's int64 lease ids as clients send them. Out: the alias every
//! lease-carrying type uses, and the reserved "no lease" value.

/// A lease id, signed as in etcd's API (JSON clients send int64 strings).
pub type LeaseId = i64;

/// The id meaning "no lease" (a put with it detaches the key).
pub const NO_LEASE: LeaseId = 0;
