//! `node-lifecycle-controller run | simulate | status | explain`: parse the command line, run the command.
//! Usage errors exit 2; other failures exit 1.

use clap::Parser;
use clap::error::ErrorKind;
use node_lifecycle_controller::commands::{self, causes};
use node_lifecycle_controller::config::{Cli, Command, separate_bool_value};
use std::process::ExitCode;

/// mimalloc instead of the C library's allocator: watch events and requests are decoded into
/// many small short-lived strings, which glibc's and musl's allocators serve slowly (see
/// BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            match separate_bool_value(&args).filter(|_| e.kind() == ErrorKind::UnknownArgument) {
                Some(hint) => eprintln!("error: {hint}"),
                None => {
                    let _ = e.print();
                }
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match cli.command {
        Command::Simulate(args) => commands::simulate::simulate(args),
        Command::Status(args) => commands::explain::status(args),
        Command::Explain(args) => commands::explain::explain(args),
        Command::Run(args) => commands::run::run(args).unwrap_or_else(|e| {
            eprintln!("error: {}", causes(&e));
            ExitCode::from(e.exit_code())
        }),
    }
}
