//! `haven bench fsync`: this disk's durable-write floor — the latency of
//! writing 4 KiB and `fdatasync`ing it, as a WAL append does.
//!
//! In: a directory on the disk to measure. Out: p50/p99/max of write +
//! fdatasync over `--count` rounds; the file is removed afterwards. By
//! default each write appends, so every fdatasync also commits the file's
//! new size to the filesystem journal; with `--preallocate` the file is
//! written and synced whole first and the rounds overwrite it, which is
//! the floor a WAL with preallocated segments (etcd's) can reach.

use crate::bench::BenchOutput;
use crate::bench::histogram::Histogram;
use crate::error::ClientError;
use clap::Args;
use serde::Serialize;
use std::io::{Seek as _, Write as _};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Debug, Args)]
#[command(after_help = "Example:\n  haven bench fsync --dir /var/lib/haven --count 500\n\n\
Run it on the disk that holds the data directories: a replicated write cannot be\n\
acknowledged faster than one fsync on the leader's disk.")]
pub struct FsyncBenchArgs {
    /// Directory on the disk to measure [default: the current directory].
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Rounds of write + fdatasync.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Overwrite a file written and synced beforehand instead of appending.
    #[arg(long)]
    pub preallocate: bool,
    /// Bytes written per round.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=16 << 20))]
    pub bytes: u32,
    #[arg(long, value_enum, default_value_t = BenchOutput::Table)]
    pub output: BenchOutput,
}

#[derive(Clone, Debug, Serialize)]
pub struct FsyncResult {
    pub preallocated: bool,
    pub count: u64,
    pub bytes: u32,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn measure(args: &FsyncBenchArgs) -> Result<FsyncResult, ClientError> {
    let path = args.dir.join(format!(".haven-fsync-bench-{}", std::process::id()));
    let context = || format!("measuring fsync in {} (is it a writable directory?)", args.dir.display());
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| ClientError::io(context(), e))?;
    let block = vec![0x5a_u8; args.bytes as usize];
    let mut histogram = Histogram::default();
    let outcome = preallocate(&mut file, args).and_then(|()| {
        (0..args.count).try_for_each(|_| {
            let started = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            histogram.record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            Ok(())
        })
    });
    drop(file);
    let _ = std::fs::remove_file(&path);
    outcome.map_err(|e| ClientError::io(context(), e))?;
    let ms = |us: u64| us as f64 / 1_000.0;
    Ok(FsyncResult {
        preallocated: args.preallocate,
        count: histogram.count(),
        bytes: args.bytes,
        p50_ms: ms(histogram.quantile(0.5)),
        p99_ms: ms(histogram.quantile(0.99)),
        max_ms: ms(histogram.max()),
    })
}

/// With `--preallocate`: the whole file written and synced, then rewound.
fn preallocate(file: &mut std::fs::File, args: &FsyncBenchArgs) -> std::io::Result<()> {
    if !args.preallocate {
        return Ok(());
    }
    let zeros = vec![0u8; args.bytes as usize];
    (0..args.count).try_for_each(|_| file.write_all(&zeros))?;
    file.sync_all()?;
    file.seek(std::io::SeekFrom::Start(0)).map(|_| ())
}

pub fn run(args: FsyncBenchArgs) -> Result<(), ClientError> {
    let result = measure(&args)?;
    match args.output {
        BenchOutput::Json => println!("{}", serde_json::to_string(&result).unwrap_or_default()),
        BenchOutput::Table => println!(
            "fsync floor in {} ({}): {} rounds of {} bytes + fdatasync: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            args.dir.display(),
            if args.preallocate { "overwriting a preallocated file" } else { "appending" },
            result.count,
            result.bytes,
            result.p50_ms,
            result.p99_ms,
            result.max_ms
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("haven-fsync-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args =
            FsyncBenchArgs { dir: dir.clone(), count: 5, bytes: 512, preallocate: false, output: BenchOutput::Table };
        for preallocate in [false, true] {
            let result = measure(&FsyncBenchArgs { preallocate, ..args.clone() }).unwrap();
            assert_eq!((result.count, result.preallocated), (5, preallocate));
            assert!(result.p50_ms > 0.0 && result.p50_ms <= result.max_ms);
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the probe file is removed");
        std::fs::remove_dir(&dir).unwrap();
        let missing = FsyncBenchArgs { dir: dir.join("missing"), ..args };
        assert!(measure(&missing).unwrap_err().to_string().contains("writable directory"));
    }
}
