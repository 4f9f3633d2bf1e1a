//! The CLI commands `haven kv`, `haven lease`, `haven member` and `haven
//! status` (etcd's API), and `haven service`, `haven node ls|drain|undrain`,
//! `haven events` and `haven apply` (Haven's `/v1/` API): clap argument
//! types and `run` functions for the binary to mount.
//!
//! In: parsed arguments. Out: tables or etcd JSON on stdout, or a
//! [`ClientError`] for the binary to print. Each command also has an
//! `execute` function that writes to any `Write`, for tests and embedding.

pub mod apply;
pub mod display;
pub mod events;
pub mod ha_format;
pub mod kv;
pub mod lease;
pub mod member;
pub mod nodes;
pub mod service;
pub mod status;
pub mod table;
pub mod txn_format;

use crate::client::{Client, ClientConfig};
use crate::error::ClientError;
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// Options every client command takes (before or after the subcommand).
#[derive(Clone, Debug, Args)]
pub struct GlobalArgs {
    /// Client URLs of the cluster, comma-separated; requests fail over between them.
    #[arg(
        long,
        global = true,
        env = "HAVEN_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// `table` for people, `json` for scripts (etcd's own JSON answers).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Time for one request at one endpoint before trying the next, in milliseconds.
    #[arg(long, global = true, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

impl GlobalArgs {
    /// For tests and embedding: these endpoints, table output, a 5 s timeout.
    pub fn new(endpoints: Vec<String>) -> Self {
        GlobalArgs { endpoints, output: OutputFormat::Table, timeout_ms: 5_000 }
    }

    pub fn client(&self) -> Result<Client, ClientError> {
        Client::new(ClientConfig {
            endpoints: self.endpoints.clone(),
            request_timeout: Duration::from_millis(self.timeout_ms),
            ..ClientConfig::default()
        })
    }
}

/// Where a command prints, and in which format.
pub struct Printer<'a> {
    pub format: OutputFormat,
    pub out: &'a mut (dyn Write + Send),
}

impl std::fmt::Debug for Printer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer").field("format", &self.format).finish_non_exhaustive()
    }
}

impl<'a> Printer<'a> {
    pub fn new(format: OutputFormat, out: &'a mut (dyn Write + Send)) -> Self {
        Printer { format, out }
    }

    /// One line of text (table format).
    pub fn line(&mut self, text: &str) -> Result<(), ClientError> {
        writeln!(self.out, "{text}").map_err(|e| ClientError::io("writing the output", e))
    }

    /// Raw text, e.g. a rendered table.
    pub fn text(&mut self, text: &str) -> Result<(), ClientError> {
        self.out.write_all(text.as_bytes()).map_err(|e| ClientError::io("writing the output", e))
    }

    /// One JSON document on one line.
    pub fn json<T: Serialize>(&mut self, value: &T) -> Result<(), ClientError> {
        let text =
            serde_json::to_string(value).map_err(|e| ClientError::usage(format!("cannot encode output: {e}")))?;
        self.line(&text)
    }

    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.out.flush().map_err(|e| ClientError::io("writing the output", e))
    }
}
