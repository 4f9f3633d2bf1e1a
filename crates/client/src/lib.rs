//! A client of the etcd v3 JSON API (see `crates/gateway`), used by the
//! `haven` CLI and benchmarks against Haven and etcd alike.
