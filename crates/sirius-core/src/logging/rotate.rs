//! `logger rotate`: moving a log file away by Asterisk's strategies
//! (main/logger.c `rotate_file`). The caller holds the file's lock and opens
//! the path again afterwards.

use super::RotateStrategy;
use std::path::{Path, PathBuf};

/// Moves `path` away; returns where it went (`None`: strategy `none`, or
/// no file there).
pub(super) fn rotate(path: &Path, strategy: RotateStrategy) -> std::io::Result<Option<PathBuf>> {
    if !path.exists() {
        return Ok(None);
    }
    let numbered = |n: u64| suffixed(path, &n.to_string());
    let to = match strategy {
        RotateStrategy::None => return Ok(None),
        RotateStrategy::Sequential => {
            let n = (0..).find(|n| !numbered(*n).exists()).unwrap_or(0);
            numbered(n)
        }
        RotateStrategy::Timestamp => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            suffixed(path, &secs.to_string())
        }
        RotateStrategy::Rotate => {
            let free = (0..).find(|n| !numbered(*n).exists()).unwrap_or(0);
            for n in (0..free).rev() {
                std::fs::rename(numbered(n), numbered(n + 1))?;
            }
            numbered(0)
        }
    };
    std::fs::rename(path, &to)?;
    Ok(Some(to))
}

/// `messages` → `messages.<suffix>`.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<(String, String)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn sequential_takes_the_first_free_number() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("messages");
        std::fs::write(&p, "a").unwrap();
        assert_eq!(
            rotate(&p, RotateStrategy::Sequential).unwrap(),
            Some(d.path().join("messages.0"))
        );
        std::fs::write(&p, "b").unwrap();
        rotate(&p, RotateStrategy::Sequential).unwrap();
        assert_eq!(
            names(d.path()),
            [
                ("messages.0".into(), "a".into()),
                ("messages.1".into(), "b".into())
            ]
        );
    }

    #[test]
    fn rotate_shifts_the_old_ones_up() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("messages");
        for text in ["a", "b", "c"] {
            std::fs::write(&p, text).unwrap();
            rotate(&p, RotateStrategy::Rotate).unwrap();
        }
        assert_eq!(
            names(d.path()),
            [
                ("messages.0".into(), "c".into()),
                ("messages.1".into(), "b".into()),
                ("messages.2".into(), "a".into())
            ]
        );
    }

    #[test]
    fn timestamp_and_none() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("security");
        std::fs::write(&p, "a").unwrap();
        assert_eq!(rotate(&p, RotateStrategy::None).unwrap(), None);
        let to = rotate(&p, RotateStrategy::Timestamp).unwrap().unwrap();
        let suffix = to
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_prefix("security.")
            .unwrap();
        assert!(suffix.parse::<u64>().unwrap() > 1_700_000_000);
        assert_eq!(rotate(&p, RotateStrategy::Sequential).unwrap(), None);
    }
}
