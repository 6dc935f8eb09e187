//! The `provsearch` command: a thin shell over `provsearch-ingest` and `provsearch-index`.
//!
//! Exit codes: 0 success (whatever the verdict), 1 a model or file could not be read or written, 2 bad usage.

mod commands;
mod flags;
mod output;

use anyhow::Result;
use clap::Parser;
use flags::{Cli, Command};
use std::process::ExitCode;

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fingerprint {
            model,
            json,
            output,
            id,
            model_args,
        } => commands::fingerprint::run(&model, json, output.as_ref(), id, &model_args),
        Command::Compare {
            a,
            b,
            json,
            config,
            model_args,
        } => commands::compare::run(&a, &b, json, config.as_deref(), &model_args),
        Command::Ingest(args) => commands::ingest::run(&args),
        Command::Query(q) => commands::query::run(q),
        Command::Serve { index, listen } => commands::serve::run(&index, &listen),
        Command::Index(c) => commands::index::run(c),
        Command::Eval(args) => commands::eval::run(&args),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`provsearch ... | head`) is not an error.
            let broken_pipe = err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("provsearch: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
