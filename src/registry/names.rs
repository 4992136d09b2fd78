//! What a model or version name may be: it appears in URLs, metric labels,
//! log lines and the `x-switchyard-model-version` header.

use super::RegistryError;

/// The version a model deployed from command-line flags carries.
pub const BOOT_VERSION: &str = "boot";

const MAX_LEN: usize = 64;

fn check(kind: &str, name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LEN
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{kind} name {name:?} must be 1 to {MAX_LEN} letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

pub fn check_model(name: &str) -> Result<(), RegistryError> {
    check("model", name)
}

pub fn check_version(name: &str) -> Result<(), RegistryError> {
    check("version", name)?;
    if name == BOOT_VERSION {
        return Err(RegistryError::Invalid(format!(
            "version `{BOOT_VERSION}` is reserved for the model given on the command line"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_a_path_or_header_are_refused() {
        for good in ["smollm2", "v1", "qwen2.5-0.5b_q4", "2026.11.30"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in [
            "", "../etc", "a/b", ".hidden", "-x", "a b", "a\nb", "é", "boot",
        ] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
        assert!(check_model(&"m".repeat(65)).is_err());
        assert!(check_model("boot").is_ok());
    }
}
