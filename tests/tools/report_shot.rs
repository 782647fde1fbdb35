//! Pictures of report pages, for people (scripts/report-screenshot runs it):
//!
//!   cargo run --example report-shot -- sample OUT.html NODES
//!       writes a synthetic run of NODES nodes (tests/browser/sample.rs)
//!   cargo run --example report-shot -- screenshot PAGE.html OUT.png WIDTHxHEIGHT full|viewport [SCRIPT]
//!       renders PAGE in headless Chromium (after SCRIPT, if any) and saves a PNG; fails on
//!       any console problem or network request, as the tests do

#[path = "../browser/mod.rs"]
mod browser;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["sample", out, nodes] => {
            let Ok(n) = nodes.parse::<usize>() else {
                eprintln!("NODES: expected a number, not {nodes}");
                return ExitCode::from(2);
            };
            if let Err(e) = keg::html::write(Path::new(out), &browser::sample::synthetic(n, 6)) {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
        ["screenshot", page, out, size, mode, rest @ ..] if rest.len() <= 1 => {
            let Some((w, h)) = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            else {
                eprintln!("SIZE: expected WIDTHxHEIGHT, not {size}");
                return ExitCode::from(2);
            };
            let mut b = browser::Browser::start();
            let p = b.open(&browser::file_url(Path::new(page)), w, h);
            if let Some(script) = rest.first() {
                b.eval(&p, script);
            }
            let shot = b.screenshot(&p, *mode == "full");
            let problems = b.problems();
            let requests = b.network_requests();
            if !problems.is_empty() || !requests.is_empty() {
                eprintln!("{page}: {problems:?} {requests:?}");
                return ExitCode::FAILURE;
            }
            if let Err(e) = std::fs::write(out, shot) {
                eprintln!("{out}: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ => {
            eprintln!(
                "usage: report-shot sample OUT.html NODES\n       report-shot screenshot PAGE.html OUT.png WIDTHxHEIGHT full|viewport [SCRIPT]"
            );
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
