//! `--model` takes a path to a GGUF file or the name of a known model,
//! which is pulled first when missing.

use crate::store;
use std::path::PathBuf;

pub fn model_path(arg: Option<&str>) -> Result<PathBuf, String> {
    let arg = arg.unwrap_or(store::DEFAULT_MODEL);
    let path = PathBuf::from(arg);
    if path.exists() {
        return Ok(path);
    }
    if store::CATALOG.iter().any(|m| m.name == arg) {
        let outcome = store::pull(arg, &mut std::io::stderr()).map_err(|e| e.to_string())?;
        return Ok(outcome.path().to_path_buf());
    }
    Err(format!(
        "`{arg}` is neither a file nor a known model (known: {})",
        store::CATALOG
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
