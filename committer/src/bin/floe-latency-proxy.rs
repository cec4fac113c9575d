//! `floe-latency-proxy`: a TCP proxy that adds a fixed delay to every request, so that a
//! benchmark against LocalStack sees the round trip of a real object store.
//!
//! LocalStack answers in about a millisecond and serializes requests on its own CPU; S3
//! answers a small PUT or GET in tens of milliseconds but serves thousands at once. A
//! writer that makes its requests one after another (Python icechunk's one commit per
//! group) and one that makes them concurrently (floe's coalesced commit) compare very
//! differently on the two, so `bench/commits.py` measures both.
//!
//! HTTP/1.1 without pipelining is turn-based: the client speaks, the server answers. The
//! proxy delays the first bytes of each client turn by `--delay-ms`, which is one added
//! round trip per request whatever the connection reuse.
//!
//! It also counts the requests it relays by HTTP method: an independent count, at the wire,
//! of what any client (floe or Python icechunk) asked of the store.
//!
//! Usage: floe-latency-proxy --upstream 127.0.0.1:4566 --delay-ms 20 [--listen 127.0.0.1:0]
//! Prints `listening on HOST:PORT` once ready, and on SIGTERM or SIGINT one JSON line
//! `{"requests": {"GET": n, "PUT": n, ...}}` before it exits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
struct Args {
    /// Where requests go (LocalStack).
    #[arg(long, default_value = "127.0.0.1:4566")]
    upstream: String,
    /// Delay added to each request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    floe_runtime::run("floe-latency-proxy", || serve(args))
}

async fn serve(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("listening on {}", listener.local_addr()?);
    let delay = Duration::from_millis(args.delay_ms);
    let counts: Counts = Arc::default();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (client, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let upstream = args.upstream.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(client, &upstream, delay, counts).await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    let counts = counts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    println!("{}", serde_json::json!({ "requests": counts }));
    Ok(std::process::ExitCode::SUCCESS)
}

/// Requests relayed, by HTTP method.
type Counts = Arc<Mutex<BTreeMap<&'static str, u64>>>;

/// The method of a request from its first bytes (`PUT /bucket/key HTTP/1.1`); a turn that
/// starts with anything else (a body sent after `100 Continue`) is `other`.
fn method(head: &[u8]) -> &'static str {
    ["GET", "PUT", "POST", "HEAD", "DELETE"]
        .into_iter()
        .find(|m| head.starts_with(m.as_bytes()) && head.get(m.len()) == Some(&b' '))
        .unwrap_or("other")
}

async fn relay(
    client: TcpStream,
    upstream: &str,
    delay: Duration,
    counts: Counts,
) -> anyhow::Result<()> {
    client.set_nodelay(true)?;
    let server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // True while the server has spoken last: the next client bytes start a new request.
    let server_spoke = Arc::new(AtomicBool::new(true));
    let to_server = {
        let server_spoke = Arc::clone(&server_spoke);
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = client_read.read(&mut buf).await?;
                if n == 0 {
                    server_write.shutdown().await?;
                    return anyhow::Ok(());
                }
                if server_spoke.swap(false, Ordering::AcqRel) {
                    *counts
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(method(&buf[..n]))
                        .or_default() += 1;
                    tokio::time::sleep(delay).await;
                }
                server_write.write_all(&buf[..n]).await?;
            }
        }
    };
    let to_client = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = server_read.read(&mut buf).await?;
            if n == 0 {
                client_write.shutdown().await?;
                return anyhow::Ok(());
            }
            server_spoke.store(true, Ordering::Release);
            client_write.write_all(&buf[..n]).await?;
        }
    };
    tokio::try_join!(to_server, to_client)?;
    Ok(())
}
