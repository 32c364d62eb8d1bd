//! `registrations.json`, written off the SIP thread.
//!
//! The registrar runs on the SIP endpoint's only thread: a synchronous
//! write (and its `fsync`) on every binding change stalled every call and
//! REGISTER behind the disk, and a burst of REGISTERs (phones re-registering
//! after an outage) paid one write each. Instead the registrar hands each
//! new state to a writer thread through a channel; the writer takes the
//! latest of whatever is queued (a burst costs one write) and writes it
//! atomically: a temporary file, synced, then renamed over the old one, so
//! a crash leaves either the previous file or the new one, never half of
//! one. Dropping the store (chan_sip unloading) writes what is still
//! queued before it returns.

use super::Binding;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// The bindings as saved: peer name → its contacts, newest first.
pub type Snapshot = BTreeMap<String, Vec<Binding>>;

/// What a saved file may hold: today's lists, or (written before
/// `max_contacts`) one binding per peer, read as a list of one.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Saved {
    Lists(Snapshot),
    Single(BTreeMap<String, Binding>),
}

/// Reads a saved file's bytes, either form.
pub fn decode(bytes: &[u8]) -> Option<Snapshot> {
    match serde_json::from_slice::<Saved>(bytes).ok()? {
        Saved::Lists(l) => Some(l),
        Saved::Single(s) => Some(s.into_iter().map(|(k, b)| (k, vec![b])).collect()),
    }
}

/// Why the registrations could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bindings did not serialise (cannot happen with these types; kept
    /// typed rather than unwrapped).
    #[error("cannot encode registrations: {0}")]
    Encode(#[from] serde_json::Error),
    /// Writing, syncing or renaming the file failed.
    #[error("cannot save registrations to {path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

enum Job {
    Save(Snapshot),
    /// Answered once every snapshot sent before it is on disk.
    Flush(mpsc::SyncSender<()>),
}

/// The handle the registrar keeps: sends snapshots to the writer thread.
pub struct Store {
    path: PathBuf,
    /// `None` when the writer thread could not be started: writes then
    /// happen in place, as before (slow, but nothing is lost).
    writer: Option<(Sender<Job>, JoinHandle<()>)>,
}

/// How long a flush waits for the disk before giving up (a hung disk must
/// not hang chan_sip's unload forever).
const FLUSH_WAIT: Duration = Duration::from_secs(5);

impl Store {
    /// A store writing to `path` from a thread of its own.
    pub fn new(path: PathBuf) -> Store {
        let (tx, rx) = mpsc::channel();
        let target = path.clone();
        let writer = std::thread::Builder::new()
            .name("sip-regstore".into())
            .spawn(move || run(&target, &rx));
        let writer = match writer {
            Ok(handle) => Some((tx, handle)),
            Err(e) => {
                log::warn!("cannot start the registrations writer ({e}): saving in place");
                None
            }
        };
        Store { path, writer }
    }

    /// Queues `bindings` to be saved; returns at once.
    pub fn save(&self, bindings: Snapshot) {
        let bindings = match &self.writer {
            Some((tx, _)) => match tx.send(Job::Save(bindings)) {
                Ok(()) => return,
                // The writer is gone (it cannot be while we hold it): save here.
                Err(mpsc::SendError(Job::Save(b))) => b,
                Err(mpsc::SendError(Job::Flush(_))) => return,
            },
            None => bindings,
        };
        log_failure(write_atomically(&self.path, &bindings));
    }

    /// Waits (bounded) until every snapshot saved so far is on disk.
    pub fn flush(&self) {
        let Some((tx, _)) = &self.writer else { return };
        let (done, wait) = mpsc::sync_channel(1);
        if tx.send(Job::Flush(done)).is_ok() && wait.recv_timeout(FLUSH_WAIT).is_err() {
            log::warn!(
                "registrations not saved to {} within {FLUSH_WAIT:?}",
                self.path.display()
            );
        }
    }
}

impl Drop for Store {
    /// Writes what is still queued and stops the writer: closing the channel
    /// ends its loop once the queue is drained.
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.writer.take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}

/// The writer thread: waits for a job, takes everything queued behind it
/// and writes only the latest snapshot.
fn run(path: &Path, rx: &Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut latest = None;
        let mut flushes = Vec::new();
        for job in std::iter::once(first).chain(rx.try_iter()) {
            match job {
                Job::Save(s) => latest = Some(s),
                Job::Flush(done) => flushes.push(done),
            }
        }
        if let Some(snapshot) = latest {
            log_failure(write_atomically(path, &snapshot));
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn log_failure(result: Result<(), StoreError>) {
    if let Err(e) = result {
        log::error!("{e}");
    }
}

/// Writes `bindings` to `path` through `<path>.tmp`, synced, then renamed.
pub fn write_atomically(path: &Path, bindings: &Snapshot) -> Result<(), StoreError> {
    let data = serde_json::to_vec_pretty(bindings)?;
    let tmp = path.with_extension("json.tmp");
    let io = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&data).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(n: u64) -> Binding {
        Binding {
            contact: format!("sip:alice@127.0.0.1:{n}"),
            addr: format!("127.0.0.1:{}", 1024 + n % 60000).parse().unwrap(),
            expires_at: 1000 + n,
            useragent: "burst".into(),
            tcp: n % 2 == 1,
        }
    }

    fn read(path: &Path) -> Snapshot {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn after_a_burst_the_file_holds_the_last_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registrations.json");
        let store = Store::new(path.clone());
        let mut state = Snapshot::new();
        for n in 0..2000u64 {
            // Phones come, re-register and go, as after an outage.
            state.insert(format!("phone{}", n % 50), vec![binding(n)]);
            if n % 7 == 0 {
                state.remove(&format!("phone{}", (n + 3) % 50));
            }
            store.save(state.clone());
        }
        store.flush();
        assert_eq!(read(&path), state);
        assert!(
            !dir.path().join("registrations.json.tmp").exists(),
            "the temporary file was renamed over the store"
        );
        // One more change, then the store goes (chan_sip unloading): the
        // change is on disk when the drop returns.
        state.clear();
        state.insert("last".into(), vec![binding(7), binding(8)]);
        store.save(state.clone());
        drop(store);
        assert_eq!(read(&path), state);
    }

    /// A file written before `max_contacts` (one binding per peer) reads
    /// as lists of one; today's lists read as they are.
    #[test]
    fn a_file_of_single_bindings_is_migrated() {
        let old: std::collections::BTreeMap<String, Binding> =
            [("alice".to_string(), binding(1))].into();
        let bytes = serde_json::to_vec(&old).unwrap();
        let read = decode(&bytes).unwrap();
        assert_eq!(read["alice"], vec![binding(1)]);
        let new: Snapshot = [("bob".to_string(), vec![binding(2), binding(3)])].into();
        assert_eq!(decode(&serde_json::to_vec(&new).unwrap()).unwrap(), new);
        assert!(decode(b"not json").is_none());
    }

    #[test]
    fn a_store_that_cannot_write_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("registrations.json");
        let err = write_atomically(&path, &Snapshot::new()).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "cannot save registrations to {}: ",
                path.display()
            )),
            "{err}"
        );
    }
}
