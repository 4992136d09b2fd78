//! `switchyard models …`

use super::CliResult;
use crate::store;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Fetch a known model into $SWITCHYARD_HOME/models and verify it;
    /// prints the file's path last.
    Pull {
        /// e.g. smollm2-135m-instruct
        name: String,
    },
}

pub fn run(cmd: ModelsCommand) -> CliResult {
    match cmd {
        ModelsCommand::Pull { name } => {
            let outcome = store::pull(&name, &mut std::io::stderr()).map_err(|e| e.to_string())?;
            if let store::PullOutcome::Present(_) = outcome {
                eprintln!("{name}: already present, nothing to do");
            }
            println!("{}", outcome.path().display());
            Ok(())
        }
    }
}
