//! `sirius import-asterisk DIR`: an Asterisk configuration directory's
//! `sip.conf` (with `rtp.conf`'s port range) and `extensions.conf`
//! converted into Sirius's `sip.toml` and `extensions.toml`, with a list,
//! line by line, of what could not be converted and why.
//!
//! The converted dialplan is loaded with Sirius's own dialplan reader before
//! it is written, so a file this command writes is one Sirius runs (a step
//! it could not convert is a `NoOp`, not a load error); `sip.toml` is checked
//! as TOML here, and by chan_sip when the daemon starts (a host name that does
//! not resolve, say, is only known then).

mod conf;
mod extensions;
mod sip;
mod toml_out;

use conf::{Conf, Place};
use std::path::{Path, PathBuf};

/// What could not be converted, in file order.
#[derive(Debug, Default)]
pub struct Report {
    notes: Vec<(Place, String)>,
}

impl Report {
    fn note(&mut self, at: &Place, why: String) {
        self.notes.push((at.clone(), why));
    }

    /// The notes as lines, `file:line: why`, by file then line.
    pub fn lines(&self) -> Vec<String> {
        let mut v: Vec<&(Place, String)> = self.notes.iter().collect();
        v.sort_by(|a, b| (&a.0.file, a.0.line).cmp(&(&b.0.file, b.0.line)));
        v.iter().map(|(at, why)| format!("{at}: {why}")).collect()
    }
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither file is there.
    #[error("{0} has neither sip.conf nor extensions.conf")]
    Nothing(PathBuf),
    /// An output file exists already.
    #[error("{0} exists; remove it or choose another --out directory")]
    Exists(PathBuf),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The converted dialplan does not load (a bug of the converter).
    #[error("the converted extensions.toml does not load: {0}")]
    Dialplan(String),
    /// The converted sip.toml is not TOML (a bug of the converter).
    #[error("the converted sip.toml is not valid TOML: {0}")]
    Toml(String),
}

/// The converted files' text.
#[derive(Debug, Default)]
pub struct Converted {
    /// `sip.toml`, when there was a `sip.conf`.
    pub sip: Option<String>,
    /// `extensions.toml`, when there was an `extensions.conf`.
    pub extensions: Option<String>,
    /// What could not be converted.
    pub report: Report,
}

/// Converts the files of `dir` (nothing is written).
pub fn convert(dir: &Path) -> Result<Converted, ImportError> {
    let read = |name: &str| {
        Conf::read(dir, name).map_err(|source| ImportError::Read {
            path: dir.join(name),
            source,
        })
    };
    let (sip, rtp, ext) = (
        read("sip.conf")?,
        read("rtp.conf")?,
        read("extensions.conf")?,
    );
    if sip.is_none() && ext.is_none() {
        return Err(ImportError::Nothing(dir.to_path_buf()));
    }
    let mut out = Converted::default();
    for c in [&sip, &rtp, &ext].into_iter().flatten() {
        for (at, why) in &c.problems {
            out.report.note(at, why.clone());
        }
    }
    if let Some(sip) = &sip {
        let text = sip::convert(sip, rtp.as_ref(), &mut out.report);
        toml::from_str::<toml::Table>(&text).map_err(|e| ImportError::Toml(e.to_string()))?;
        out.sip = Some(text);
    }
    if let Some(ext) = &ext {
        let text = extensions::convert(ext, &mut out.report).map_err(ImportError::Dialplan)?;
        out.extensions = Some(text);
    }
    Ok(out)
}

/// Converts `dir` and writes the files into `out` (made if need be; files
/// there are never overwritten). Returns the files written and the report.
pub fn import(dir: &Path, out: &Path) -> Result<(Vec<PathBuf>, Report), ImportError> {
    let c = convert(dir)?;
    let files: Vec<(PathBuf, &String)> = [("sip.toml", &c.sip), ("extensions.toml", &c.extensions)]
        .into_iter()
        .filter_map(|(n, t)| Some((out.join(n), t.as_ref()?)))
        .collect();
    for (path, _) in &files {
        if path.exists() {
            return Err(ImportError::Exists(path.clone()));
        }
    }
    std::fs::create_dir_all(out).map_err(|source| ImportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|source| ImportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok((written, c.report))
}

#[cfg(test)]
mod tests;
