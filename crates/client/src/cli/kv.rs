//! `haven kv get|put|del|watch|txn`: keys and values over the etcd v3 API.
//!
//! In: the parsed subcommand (and, for `txn`, its text on stdin). Out: a
//! table or etcd's JSON on the printer; `watch` prints events until Ctrl-C
//! (or `--count`), resuming on another endpoint if its stream breaks.

use crate::cli::display::{hex_id, parse_lease_id, show_bytes};
use crate::cli::table::Table;
use crate::cli::txn_format::{TXN_TEXT_BYTES_MAX, parse_txn};
use crate::cli::{GlobalArgs, OutputFormat, Printer};
use crate::client::Client;
use crate::error::ClientError;
use crate::kv::{DeleteRangeRequest, KeyValue, PutRequest, RangeRequest, prefix_end};
use crate::txn::ResponseOp;
use crate::watch::{EventType, WatchCreateRequest, WatchResponse};
use clap::{Args, Subcommand};
use std::io::Read as _;

const KV_EXAMPLES: &str = "Examples:
  haven kv put greeting hello              set a key
  haven kv get greeting                    read it
  haven kv get app/ --prefix --limit 10    the first 10 keys under app/
  haven kv get greeting --rev 5            the value at revision 5
  haven kv put session 42 --lease 694d7a   a key that lives as long as a lease
  haven kv del app/ --prefix               delete every key under app/
  haven kv watch app/ --prefix             print changes until Ctrl-C
  haven kv get greeting --output json      etcd's JSON, values in base64
  printf 'val(\"owner\") = \"alice\"\\n\\nput owner bob\\n\\nget owner\\n' | haven kv txn

Endpoints come from --endpoints or HAVEN_ENDPOINTS, e.g. --endpoints http://127.0.0.1:2379,http://127.0.0.1:2479";

const TXN_HELP: &str = "The txn text has three sections separated by one blank line each:
compares, operations if all compares hold, operations otherwise.

  Compares:    TARGET(\"KEY\") OP OPERAND
               TARGET: val | ver | create | mod | lease    OP: = | != | < | >
  Operations:  get KEY [--prefix]
               put KEY VALUE [--lease ID]
               del KEY [--prefix]
  Strings may be double-quoted, with \\\" \\\\ \\n \\t \\xHH escapes. Lines starting with # are comments.

Example (take a lock only if nobody holds it):
  haven kv txn <<'EOF'
  create(\"lock\") = \"0\"

  put lock me

  get lock
  EOF";

#[derive(Debug, Args)]
#[command(after_help = KV_EXAMPLES)]
pub struct KvArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: KvCommand,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Read a key, or a range of keys with --prefix.
    Get(GetArgs),
    /// Set a key to a value.
    Put(PutArgs),
    /// Delete a key, or every key under a prefix.
    Del(DelArgs),
    /// Print every change of a key or prefix until Ctrl-C.
    Watch(WatchArgs),
    /// Run a transaction read from stdin (see `haven kv txn --help`).
    #[command(after_help = TXN_HELP)]
    Txn(TxnArgs),
}

#[derive(Debug, Args)]
pub struct GetArgs {
    pub key: String,
    /// Every key that starts with KEY.
    #[arg(long)]
    pub prefix: bool,
    /// At most this many keys (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Read at this revision (0: the newest).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Serve from the answering member's state without asking the leader (may be stale).
    #[arg(long)]
    pub serializable: bool,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    pub key: String,
    pub value: String,
    /// Attach the key to this lease (hexadecimal id, as `haven lease grant` prints it).
    #[arg(long, value_parser = parse_lease_id)]
    pub lease: Option<i64>,
}

#[derive(Debug, Args)]
pub struct DelArgs {
    pub key: String,
    /// Every key that starts with KEY.
    #[arg(long)]
    pub prefix: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub key: String,
    /// Every key that starts with KEY.
    #[arg(long)]
    pub prefix: bool,
    /// Start at this revision, replaying history (0: from the next change).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Also print the previous value of each changed key.
    #[arg(long)]
    pub prev_kv: bool,
    /// Stop after this many events (default: run until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct TxnArgs {
    /// Read the txn text from this file instead of stdin.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
}

pub async fn run(args: KvArgs) -> Result<(), ClientError> {
    let client = args.global.client()?;
    let mut stdout = std::io::stdout();
    execute(&client, args.command, &mut Printer::new(args.global.output, &mut stdout)).await
}

pub async fn execute(client: &Client, command: KvCommand, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    match command {
        KvCommand::Get(args) => get(client, args, printer).await,
        KvCommand::Put(args) => put(client, args, printer).await,
        KvCommand::Del(args) => del(client, args, printer).await,
        KvCommand::Watch(args) => watch(client, args, printer).await,
        KvCommand::Txn(args) => {
            let text = read_txn_text(args.file.as_deref())?;
            txn(client, &text, printer).await
        }
    }
}

fn key_range(key: &str, prefix: bool) -> (Vec<u8>, Vec<u8>) {
    let key = key.as_bytes().to_vec();
    let end = if prefix { prefix_end(&key) } else { Vec::new() };
    // etcd reads an empty key with range_end [0] as "every key".
    if prefix && key.is_empty() { (vec![0], end) } else { (key, end) }
}

async fn get(client: &Client, args: GetArgs, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let (key, range_end) = key_range(&args.key, args.prefix);
    let request = RangeRequest {
        key,
        range_end,
        limit: args.limit,
        revision: args.rev,
        serializable: args.serializable,
        ..RangeRequest::default()
    };
    let response = client.range(&request).await?;
    if printer.format == OutputFormat::Json {
        return printer.json(&response);
    }
    printer.text(&kv_table(&response.kvs).render())?;
    let more = if response.more { ", more not shown (raise --limit)" } else { "" };
    printer.line(&format!(
        "{} of {} key(s) at revision {}{more}",
        response.kvs.len(),
        response.count,
        response.header.revision
    ))
}

pub(crate) fn kv_table(kvs: &[KeyValue]) -> Table {
    let mut table = Table::new(["KEY", "VALUE", "MOD-REV", "VERSION", "LEASE"]);
    for kv in kvs {
        let lease = if kv.lease == 0 { String::new() } else { hex_id(kv.lease as u64) };
        table.push(vec![
            show_bytes(&kv.key),
            show_bytes(&kv.value),
            kv.mod_revision.to_string(),
            kv.version.to_string(),
            lease,
        ]);
    }
    table
}

async fn put(client: &Client, args: PutArgs, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let request = PutRequest {
        key: args.key.into_bytes(),
        value: args.value.into_bytes(),
        lease: args.lease.unwrap_or(0),
        prev_kv: false,
    };
    let response = client.put(&request).await?;
    match printer.format {
        OutputFormat::Json => printer.json(&response),
        OutputFormat::Table => printer.line(&format!("OK, revision {}", response.header.revision)),
    }
}

async fn del(client: &Client, args: DelArgs, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let (key, range_end) = key_range(&args.key, args.prefix);
    let response = client.delete_range(&DeleteRangeRequest { key, range_end, prev_kv: false }).await?;
    match printer.format {
        OutputFormat::Json => printer.json(&response),
        OutputFormat::Table => {
            printer.line(&format!("deleted {} key(s), revision {}", response.deleted, response.header.revision))
        }
    }
}

fn read_txn_text(file: Option<&std::path::Path>) -> Result<String, ClientError> {
    let mut text = String::new();
    let limit = u64::try_from(TXN_TEXT_BYTES_MAX).unwrap_or(u64::MAX) + 1;
    let read = match file {
        Some(path) => std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_string(&mut text))
            .map_err(|e| ClientError::io(format!("reading the txn from {}", path.display()), e)),
        None => std::io::stdin()
            .take(limit)
            .read_to_string(&mut text)
            .map_err(|e| ClientError::io("reading the txn from stdin", e)),
    };
    read.map(|_| text)
}

/// Parses `text` in the txn line format (see [`crate::cli::txn_format`]) and runs it.
pub async fn txn(client: &Client, text: &str, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let request = parse_txn(text).map_err(|e| ClientError::usage(format!("{e}; see `haven kv txn --help`")))?;
    let response = client.txn(&request).await?;
    if printer.format == OutputFormat::Json {
        return printer.json(&response);
    }
    let branch = if response.succeeded { "SUCCESS (compares held)" } else { "FAILURE (a compare failed)" };
    printer.line(&format!("{branch}, revision {}", response.header.revision))?;
    for op in &response.responses {
        match op {
            ResponseOp::Range(range) => printer.text(&kv_table(&range.kvs).render())?,
            ResponseOp::Put(_) => printer.line("put: OK")?,
            ResponseOp::DeleteRange(deleted) => printer.line(&format!("del: {} key(s)", deleted.deleted))?,
            ResponseOp::Txn(inner) => printer.line(&format!("txn: succeeded={}", inner.succeeded))?,
        }
    }
    Ok(())
}

/// Consecutive failed reconnections before `watch` gives up.
const WATCH_RECONNECTS_MAX: u32 = 10;

async fn watch(client: &Client, args: WatchArgs, printer: &mut Printer<'_>) -> Result<(), ClientError> {
    let (key, range_end) = key_range(&args.key, args.prefix);
    let mut create =
        WatchCreateRequest { key, range_end, start_revision: args.rev, prev_kv: args.prev_kv, ..Default::default() };
    let mut printed = 0u64;
    let mut failures = 0u32;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let session = watch_session(client, &create, args.count, &mut printed, printer);
        let ended = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            ended = session => ended,
        };
        match ended {
            Ok(WatchEnd::Done) => return Ok(()),
            Ok(WatchEnd::Resume { next_revision }) => {
                failures = 0;
                create.start_revision = next_revision;
            }
            Err(error @ (ClientError::Unreachable { .. } | ClientError::Protocol { .. })) => {
                failures += 1;
                if failures > WATCH_RECONNECTS_MAX {
                    return Err(error);
                }
                tokio::time::sleep(client.config().backoff.delay(failures)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

enum WatchEnd {
    Done,
    /// The stream ended; watch again from this revision.
    Resume {
        next_revision: i64,
    },
}

async fn watch_session(
    client: &Client,
    create: &WatchCreateRequest,
    count: Option<u64>,
    printed: &mut u64,
    printer: &mut Printer<'_>,
) -> Result<WatchEnd, ClientError> {
    let mut watcher = client.watch(create).await?;
    let mut next_revision = create.start_revision;
    while let Some(response) = watcher.next().await? {
        if response.canceled {
            return Err(canceled(&response));
        }
        for event in &response.events {
            if count.is_some_and(|count| *printed >= count) {
                return Ok(WatchEnd::Done);
            }
            next_revision = next_revision.max(event.kv.mod_revision + 1);
            print_event(printer, &response, event)?;
            *printed += 1;
        }
        printer.flush()?;
        if count.is_some_and(|count| *printed >= count) {
            return Ok(WatchEnd::Done);
        }
        if next_revision == 0 && response.created {
            // Resume after the revision the watch started at, not from "now".
            next_revision = response.header.revision + 1;
        }
    }
    Ok(WatchEnd::Resume { next_revision })
}

fn print_event(
    printer: &mut Printer<'_>,
    response: &WatchResponse,
    event: &crate::watch::Event,
) -> Result<(), ClientError> {
    if printer.format == OutputFormat::Json {
        let single = WatchResponse { events: vec![event.clone()], ..response.clone() };
        return printer.json(&single);
    }
    let kv = &event.kv;
    let line = match event.kind {
        EventType::Put => format!("{} PUT {} = {}", kv.mod_revision, show_bytes(&kv.key), show_bytes(&kv.value)),
        EventType::Delete => format!("{} DELETE {}", kv.mod_revision, show_bytes(&kv.key)),
    };
    let previous = event.prev_kv.as_ref().map(|prev| format!(" (was {})", show_bytes(&prev.value))).unwrap_or_default();
    printer.line(&format!("{line}{previous}"))
}

fn canceled(response: &WatchResponse) -> ClientError {
    let reason = if response.compact_revision > 0 {
        format!(
            "revisions before {} were compacted; watch again with --rev {} or later",
            response.compact_revision, response.compact_revision
        )
    } else if response.cancel_reason.is_empty() {
        "no reason given".to_owned()
    } else {
        response.cancel_reason.clone()
    };
    ClientError::WatchCanceled { reason }
}
