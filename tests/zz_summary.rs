//! The last thing `cargo test` prints: what ran and what was skipped, and why, with the command
//! that runs each skipped part. Named so that cargo, which runs test binaries in alphabetical
//! order, runs it last (and `doctest = false` in Cargo.toml: no doc tests follow it). Under CI a
//! skip here is a failure too (the skipping binaries fail under CI themselves already).

#[path = "summary/record.rs"]
mod record;

use std::process::ExitCode;

fn main() -> ExitCode {
    let outcomes = record::take(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
        std::os::unix::process::parent_id(),
    );
    let real_cluster = outcomes
        .iter()
        .any(|o| o.what.starts_with("real-cluster tier"));
    print!("{}", record::render(&outcomes, real_cluster));
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if ci && outcomes.iter().any(|o| o.status != "ran") {
        println!("== a skipped part fails under CI");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
