//! # sirius-conf
//!
//! Every Sirius configuration file is TOML, and every one reports errors the
//! same way: `file:line: reason`, with unknown keys refused (`deny_unknown_fields`
//! on the schema), so a typo never silently falls back to a default. The core
//! and each plugin (a separate cdylib) link this small crate instead of
//! repeating the line arithmetic.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid for its schema.
    #[error("{path}:{line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Parses a TOML file into `T`, turning errors into `file:line: reason`.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_toml(path, &text)
}

/// Parses TOML text (named `path` in errors) into `T`.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        // toml's message repeats the source excerpt; keep the first line, the reason.
        let reason = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string();
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            reason,
        }
    })
}

/// The 1-based line of byte `offset` in `text` (for errors found after
/// parsing, at a value's `toml::Spanned` span).
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        a: u32,
    }

    #[test]
    fn errors_carry_file_and_line() {
        let e = parse_toml::<S>(Path::new("x.toml"), "a = 1\nb = 2\n").unwrap_err();
        assert!(
            e.to_string().starts_with("x.toml:2: unknown field `b`"),
            "{e}"
        );
        let e = load_toml::<S>(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/x.toml: cannot read:"),
            "{e}"
        );
    }
}
