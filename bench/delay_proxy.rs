//! A TCP proxy for benchmarks: a slow, far-away network on 127.0.0.1 for one process's
//! connections only (`tc netem` on loopback would slow every user of the machine, the
//! shared Docker registry included).
//!
//! ```text
//! delay-proxy --target 127.0.0.1:9418 [--delay-ms 50] [--rate-kib 0] [--log FILE]
//! ```
//!
//! Prints `port N` (the port it listens on, 127.0.0.1) on stdout, then serves until killed.
//! Every chunk read from one side is written to the other `--delay-ms` after it arrived
//! (latency: it does not limit throughput), and, with `--rate-kib`, no faster than that many
//! KiB/s per direction and connection. When a connection ends, `<bytes client->server>
//! <bytes server->client>` is appended to `--log`.
//!
//! Built with `cargo build --release --example delay-proxy` (used by bench/cold.sh).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Options {
    target: String,
    delay: Duration,
    rate: Option<u64>,
    log: Option<String>,
}

fn main() {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("delay-proxy: {message}");
            eprintln!(
                "usage: delay-proxy --target HOST:PORT [--delay-ms N] [--rate-kib N] [--log FILE]"
            );
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| {
        eprintln!("delay-proxy: cannot listen: {e}");
        std::process::exit(1);
    });
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("port {port}");
    let _ = std::io::stdout().flush();
    let options = std::sync::Arc::new(options);
    for client in listener.incoming().flatten() {
        let options = std::sync::Arc::clone(&options);
        std::thread::spawn(move || serve(client, &options));
    }
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        target: String::new(),
        delay: Duration::ZERO,
        rate: None,
        log: None,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => options.target = value()?,
            "--delay-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--delay-ms: {e}"))?;
                options.delay = Duration::from_millis(ms);
            }
            "--rate-kib" => {
                let kib: u64 = value()?.parse().map_err(|e| format!("--rate-kib: {e}"))?;
                options.rate = (kib > 0).then_some(kib * 1024);
            }
            "--log" => options.log = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.target.is_empty() {
        return Err("--target is required".into());
    }
    Ok(options)
}

fn serve(client: TcpStream, options: &Options) {
    let Ok(server) = TcpStream::connect(&options.target) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::scope(|scope| {
        let up = scope.spawn(|| pipe(client, server, options));
        let down = pipe(s2, c2, options);
        (up.join().unwrap_or(0), down)
    });
    if let Some(log) = &options.log
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(file, "{} {}", up.0, up.1);
    }
}

/// Copies `from` to `to`, each chunk `delay` after it arrived and within `rate`; returns
/// the bytes copied.
fn pipe(mut from: TcpStream, mut to: TcpStream, options: &Options) -> u64 {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let delay = options.delay;
    let rate = options.rate;
    let writer = std::thread::spawn(move || {
        let mut total = 0u64;
        let started = Instant::now();
        for (arrived, chunk) in rx {
            let due = arrived + delay;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if let Some(rate) = rate {
                let allowed = started + Duration::from_secs_f64(total as f64 / rate as f64);
                let now = Instant::now();
                if allowed > now {
                    std::thread::sleep(allowed - now);
                }
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
            total += chunk.len() as u64;
        }
        let _ = to.shutdown(Shutdown::Write);
        total
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    writer.join().unwrap_or(0)
}
