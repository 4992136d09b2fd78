//! Command-line parsing and the subcommands; nothing else.

mod admin_client;
mod doctor;
mod engine_args;
mod eval;
mod generate;
mod keys;
mod models;
mod quantize;
mod resolve;
mod serve;
mod tokenize;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An OpenAI-compatible LLM inference server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a model over the OpenAI HTTP API.
    Serve(serve::ServeArgs),
    /// Model artifacts (pull) and, on a running server, versions and
    /// deployments.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Print the token ids of TEXT, space-separated, on one line.
    Tokenize(tokenize::TokenizeArgs),
    /// Generate from PROMPT, streaming to the terminal.
    Generate(generate::GenerateArgs),
    /// Write a GGUF model with its weight matrices in another format.
    Quantize(quantize::QuantizeArgs),
    /// Print a GGUF file's metadata and tensors, or dequantize one tensor.
    Inspect(quantize::InspectArgs),
    /// API keys, tenant limits and usage, on the state database.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// What this machine offers (CPU, CUDA) and whether switchyard computes
    /// correctly on it; with a GPU, kernel checks and a decode benchmark.
    Doctor(doctor::DoctorArgs),
    /// Measure a model: perplexity of a text.
    Eval {
        #[command(subcommand)]
        command: eval::EvalCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init_logging();
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Models { command } => models::run(command),
        Command::Tokenize(a) => tokenize::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Eval { command } => eval::run(command),
        Command::Keys { command } => keys::run(command),
        Command::Quantize(a) => quantize::run_quantize(a),
        Command::Inspect(a) => quantize::run_inspect(a),
        Command::Doctor(a) => doctor::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Errors of the subcommands, already worded for the terminal.
pub type CliResult = Result<(), String>;
