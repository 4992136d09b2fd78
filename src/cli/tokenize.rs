//! `switchyard tokenize --model M [--add-special] TEXT`

use super::{resolve::ModelArgs, CliResult};
use clap::Args;

#[derive(Args)]
pub struct TokenizeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Add the BOS/EOS tokens the model's file asks for.
    #[arg(long)]
    add_special: bool,
    /// Treat special-token text (e.g. <|im_start|>) as plain text.
    #[arg(long)]
    no_parse_special: bool,
    text: String,
}

pub fn run(a: TokenizeArgs) -> CliResult {
    let tok =
        crate::model::loaded::load_tokenizer(&a.model.source()?).map_err(|e| e.to_string())?;
    let ids = tok.encode(&a.text, a.add_special, !a.no_parse_special);
    let line: Vec<String> = ids.iter().map(u32::to_string).collect();
    println!("{}", line.join(" "));
    Ok(())
}
