//! Benchmark of header reading: `floe-bench FILE... [--repeat N]`.
//!
//! Inspects every file `repeat` times, one after another, on a current-thread
//! runtime pinned to one core by the caller (taskset). Blocking reads still use
//! tokio's blocking pool: the local object store itself reads on it, so limiting
//! the pool to one thread would deadlock. Prints one JSON object: files/s and,
//! per file, requests, bytes read and file size. `bench/headers.py` runs it beside VirtualiZarr and writes the table.

use std::time::Instant;

use floe_source::SourceOptions;
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 5usize;
    if let Some(i) = args.iter().position(|a| a == "--repeat") {
        repeat = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(repeat);
        args.drain(i..(i + 2).min(args.len()));
    }
    anyhow::ensure!(!args.is_empty(), "usage: floe-bench FILE... [--repeat N]");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = SourceOptions::from_env();
    let (elapsed, files) = runtime.block_on(async {
        let mut per_file = Vec::new();
        let started = Instant::now();
        for round in 0..repeat {
            for url in &args {
                let f = floe_virtualizer::inspect::inspect(url, &options, None).await?;
                if round == 0 {
                    per_file.push(json!({"file": url, "requests": f.requests, "bytes_read": f.bytes_read, "size": f.info.size,
                        "variables": f.manifest.variables.len()}));
                }
            }
        }
        Ok::<_, anyhow::Error>((started.elapsed().as_secs_f64(), per_file))
    })?;
    let total = (args.len() * repeat) as f64;
    println!(
        "{}",
        json!({"files_per_second": total / elapsed, "seconds": elapsed, "inspections": total, "files": files})
    );
    Ok(())
}
