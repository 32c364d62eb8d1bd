//! Call detail records (Asterisk's CDR engine with its `cdr_csv` backend):
//! one record per call, written to `cdr-csv/Master.csv` in the log
//! directory, in Asterisk's column order, for the billing tools that read
//! Asterisk's file.
//!
//! A call is a channel that ran a dialplan (the caller's leg, Asterisk's
//! party A); what it dialed shows as its `dstchannel`. The record's marks
//! follow the call as it goes ([`CdrMarks`]):
//!
//! ```text
//!   channel made ── start; every dialplan step (not `h`): dst, dcontext, lastapp, lastdata
//!     │ Dial makes a callee ── dstchannel = it, the marks = the Dial (a later
//!     │                        Dial starts them again)
//!     │ the callee ends unanswered ── its cause kept; marks frozen (the
//!     │                        Hangup() or Busy() after a failed Dial is not the call)
//!     │ bridged ── dstchannel = the partner; frozen for good
//!     ▼ the channel ends ── end; disposition; the record goes to the writer
//! ```
//!
//! Off the call path: the record is built from the ended channel (owned
//! strings, no formatting) and sent to one writer thread, which formats and
//! appends whatever is queued in one write and flushes when the queue is
//! empty; `finish` at shutdown writes what is left, so no record is lost.

use crate::channels::Channel;
use serde::Deserialize;
use sirius_abi::Cause;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// `cdr.toml`: Asterisk's `cdr.conf`, `[general]` (and `[csv]`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CdrFile {
    /// `[general]`.
    pub general: CdrConfig,
    /// `[csv]` (`cdr_csv.conf`'s options).
    pub csv: CsvConfig,
}

/// `[general]` of `cdr.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrConfig {
    /// Records are made (`enable`, default yes).
    pub enable: bool,
    /// Calls that were never answered are recorded too (`unanswered`,
    /// default no: Asterisk's).
    pub unanswered: bool,
    /// A call refused for congestion reads `CONGESTION`, not `FAILED`
    /// (`congestion`, default no).
    pub congestion: bool,
}

impl Default for CdrConfig {
    fn default() -> Self {
        CdrConfig {
            enable: true,
            unanswered: false,
            congestion: false,
        }
    }
}

/// `[csv]` of `cdr.toml` (cdr_csv's options, with the defaults of
/// Asterisk's sample `cdr.conf`, whose `[csv]` section turns them on).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvConfig {
    /// Times in UTC rather than local time (`usegmtime`).
    pub usegmtime: bool,
    /// The `uniqueid` column (`loguniqueid`).
    pub loguniqueid: bool,
    /// The `userfield` column (`loguserfield`).
    pub loguserfield: bool,
    /// Each record with an `accountcode` also in `<accountcode>.csv`
    /// (`accountlogs`).
    pub accountlogs: bool,
}

impl Default for CsvConfig {
    fn default() -> Self {
        CsvConfig {
            usegmtime: false,
            loguniqueid: true,
            loguserfield: true,
            accountlogs: true,
        }
    }
}

/// Where a call stands, for its record (kept on the channel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrMarks {
    /// The extension dialled (`dst`): the last dialplan step's, `h` aside.
    pub dst: String,
    /// Its context (`dcontext`).
    pub dcontext: String,
    /// The last application run (`lastapp`) and its arguments.
    pub lastapp: String,
    /// `lastdata`.
    pub lastdata: String,
    /// The channel dialled or bridged to (`dstchannel`).
    pub dstchannel: String,
    /// How the latest dialled channel ended, unanswered (its cause).
    pub dialed_cause: Option<Cause>,
    /// Kept as they are: a Dial ended, or the call was bridged.
    pub frozen: bool,
    /// Bridged once: nothing changes them any more.
    pub bridged: bool,
}

impl CdrMarks {
    /// A dialplan step runs `app(data)` at `exten@context`. The `h`
    /// extension runs after the record is closed (Asterisk's
    /// `endbeforehexten`, on by default): it changes nothing.
    pub fn step(&mut self, context: &str, exten: &str, app: &str, data: &str) {
        if self.frozen || exten == "h" {
            return;
        }
        exten.clone_into(&mut self.dst);
        context.clone_into(&mut self.dcontext);
        app.clone_into(&mut self.lastapp);
        data.clone_into(&mut self.lastdata);
    }

    /// The call dials `callee`, from `app(data)` at `exten@context`: the
    /// marks start again from this Dial.
    pub fn dialing(
        &mut self,
        callee: &str,
        (context, exten): (&str, &str),
        (app, data): (&str, &str),
    ) {
        if self.bridged {
            return;
        }
        self.frozen = false;
        self.dialed_cause = None;
        self.step(context, exten, app, data);
        callee.clone_into(&mut self.dstchannel);
    }

    /// The channel it dialled ended unanswered with `cause`: the marks
    /// stay as the Dial left them.
    pub fn dial_failed(&mut self, cause: Cause) {
        if !self.bridged {
            self.dialed_cause = Some(cause);
            self.frozen = true;
        }
    }

    /// The call is bridged to `partner`: it is its `dstchannel`, and the
    /// marks are kept as they are now, for good.
    pub fn bridged(&mut self, partner: &str) {
        if !self.bridged {
            partner.clone_into(&mut self.dstchannel);
            (self.frozen, self.bridged) = (true, true);
        }
    }
}

/// How a call ended, as `disposition` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Answered.
    Answered,
    /// Rang, nobody answered (or the caller gave up).
    NoAnswer,
    /// The callee was busy.
    Busy,
    /// It failed (no route, unregistered, congestion unless `congestion`).
    Failed,
    /// Congestion, with `congestion = true`.
    Congestion,
}

impl Disposition {
    /// Asterisk's text (`ast_cdr_disp2str`).
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "ANSWERED",
            Disposition::NoAnswer => "NO ANSWER",
            Disposition::Busy => "BUSY",
            Disposition::Failed => "FAILED",
            Disposition::Congestion => "CONGESTION",
        }
    }

    /// An unanswered call's, from its Dial's `DIALSTATUS` (cdr.c's
    /// dial-end handling): `CANCEL` is no answer, `CONGESTION` a failure
    /// unless `congestion`, any status it does not know a failure.
    pub fn of_dialstatus(status: &str, congestion: bool) -> Disposition {
        match status {
            "ANSWER" => Disposition::Answered,
            "BUSY" => Disposition::Busy,
            "NOANSWER" | "CANCEL" => Disposition::NoAnswer,
            "CONGESTION" if congestion => Disposition::Congestion,
            _ => Disposition::Failed,
        }
    }

    /// An unanswered call's without a Dial status, from a hangup cause
    /// (the call's own, then its callee's; `None` when neither tells):
    /// busy, congestion, no route or unregistered a failure, normal
    /// clearing or no answer no answer.
    pub fn of_cause(cause: Cause, congestion: bool) -> Option<Disposition> {
        match cause {
            Cause::USER_BUSY => Some(Disposition::Busy),
            Cause::CONGESTION if congestion => Some(Disposition::Congestion),
            Cause::CONGESTION | Cause::NO_ROUTE_DESTINATION | Cause::SUBSCRIBER_ABSENT => {
                Some(Disposition::Failed)
            }
            Cause::NORMAL_CLEARING | Cause::NO_ANSWER => Some(Disposition::NoAnswer),
            _ => None,
        }
    }
}

/// One record, as the writer gets it: owned fields and instants, formatted
/// on the writer's thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `accountcode`.
    pub accountcode: String,
    /// `src`: the caller's number.
    pub src: String,
    /// `dst`.
    pub dst: String,
    /// `dcontext`.
    pub dcontext: String,
    /// `clid`: `"name" <number>`.
    pub clid: String,
    /// `channel`.
    pub channel: String,
    /// `dstchannel`.
    pub dstchannel: String,
    /// `lastapp`.
    pub lastapp: String,
    /// `lastdata`.
    pub lastdata: String,
    /// When the call ended (wall clock).
    pub end: SystemTime,
    /// How long it lasted.
    pub duration: Duration,
    /// How long after its start it was answered, if it was.
    pub answered_after: Option<Duration>,
    /// `disposition`.
    pub disposition: Disposition,
    /// `uniqueid`.
    pub uniqueid: String,
    /// `userfield`.
    pub userfield: String,
}

impl Record {
    /// The record of channel `c`, ended at `ended` (`end`, the wall clock
    /// then); `None` for a channel that is not a call (a Dial's callee) or
    /// one `config` does not record (unanswered, without `unanswered`).
    pub fn of(
        c: &Channel,
        (ended, end): (Instant, SystemTime),
        config: &CdrConfig,
    ) -> Option<Record> {
        if !c.pbx || !config.enable {
            return None;
        }
        let m = &c.cdr;
        let congestion = config.congestion;
        let disposition = match (c.answered, c.vars.get("DIALSTATUS")) {
            (Some(_), _) => Disposition::Answered,
            (None, Some(status)) if !status.is_empty() => {
                Disposition::of_dialstatus(status, congestion)
            }
            // A cause that says nothing reads as no answer; no cause at all
            // (neither leg's) as a failure.
            (None, _) => [Some(c.cause), m.dialed_cause]
                .into_iter()
                .flatten()
                .find_map(|cause| Disposition::of_cause(cause, congestion))
                .unwrap_or(
                    match c.cause == Cause::NOT_DEFINED && m.dialed_cause.is_none() {
                        true => Disposition::Failed,
                        false => Disposition::NoAnswer,
                    },
                ),
        };
        // Without `unanswered`, a call neither answered nor offered to
        // anyone (cdr.c's post filter; congestion always passes) is not
        // recorded.
        let offered = !m.dstchannel.is_empty();
        let unanswered = matches!(
            disposition,
            Disposition::NoAnswer | Disposition::Failed | Disposition::Busy
        );
        if unanswered && !offered && !config.unanswered {
            return None;
        }
        Some(Record {
            accountcode: c.accountcode.clone(),
            src: c.caller_num.clone(),
            dst: m.dst.clone(),
            dcontext: m.dcontext.clone(),
            clid: clid(&c.caller_name, &c.caller_num),
            channel: c.name.clone(),
            dstchannel: m.dstchannel.clone(),
            lastapp: m.lastapp.clone(),
            lastdata: m.lastdata.clone(),
            end,
            duration: ended.saturating_duration_since(c.created),
            answered_after: c.answered.map(|a| a.saturating_duration_since(c.created)),
            disposition,
            uniqueid: c.uniqueid.clone(),
            userfield: c.vars.get("CDR(userfield)").unwrap_or_default().to_string(),
        })
    }

    /// Its line of `Master.csv` (cdr_csv's): strings quoted (quotes
    /// doubled), `duration` and `billsec` bare, times quoted as
    /// `YYYY-MM-DD HH:MM:SS` (local time, or UTC with `usegmtime`), an
    /// unanswered call's `answer` empty and unquoted; `uniqueid` and
    /// `userfield` as `csv` asks. `zone` is the offset the times are
    /// written in ([`zone`]: UTC with `usegmtime`), looked up once per batch
    /// rather than per date.
    pub fn csv_line(&self, csv: &CsvConfig, zone: chrono::FixedOffset) -> String {
        let start = self.end.checked_sub(self.duration).unwrap_or(self.end);
        let answer = self.answered_after.and_then(|a| start.checked_add(a));
        let billsec = self
            .answered_after
            .map_or(Duration::ZERO, |a| self.duration.saturating_sub(a));
        let mut line = String::with_capacity(320);
        for s in [
            &self.accountcode,
            &self.src,
            &self.dst,
            &self.dcontext,
            &self.clid,
            &self.channel,
            &self.dstchannel,
            &self.lastapp,
            &self.lastdata,
        ] {
            quoted(&mut line, s);
        }
        for t in [Some(start), answer, Some(self.end)] {
            match t {
                Some(t) => quoted(&mut line, &date(t, zone)),
                None => line.push(','),
            }
        }
        line.push_str(&format!(
            "{},{},",
            self.duration.as_secs(),
            billsec.as_secs()
        ));
        quoted(&mut line, self.disposition.as_str());
        quoted(&mut line, "DOCUMENTATION");
        if csv.loguniqueid {
            quoted(&mut line, &self.uniqueid);
        }
        if csv.loguserfield {
            quoted(&mut line, &self.userfield);
        }
        line.pop(); // the last comma
        line.push('\n');
        line
    }
}

/// Caller ID as `clid` shows it: `"name" <number>` always (Asterisk's
/// `ast_callerid_merge` gets both strings, empty or not), a `"` or `\` in
/// the name escaped with a backslash.
pub fn clid(name: &str, num: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '"' || c == '\\' {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    format!("\"{escaped}\" <{num}>")
}

fn quoted(line: &mut String, s: &str) {
    line.push('"');
    for c in s.chars() {
        if c == '"' {
            line.push('"');
        }
        line.push(c);
    }
    line.push_str("\",");
}

fn date(t: SystemTime, zone: chrono::FixedOffset) -> String {
    let t: chrono::DateTime<chrono::Utc> = t.into();
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The offset records are written in now: UTC with `usegmtime`, else the
/// local one (a time-zone lookup, hence once per batch).
pub fn zone(csv: &CsvConfig) -> chrono::FixedOffset {
    match csv.usegmtime {
        true => chrono::FixedOffset::east_opt(0).expect("UTC"),
        false => *chrono::Local::now().offset(),
    }
}

/// How long the writer gathers records after the first of a burst before
/// it writes them: a handful of wake-ups and writes a second under load,
/// not one per call (each was a thread switch, and a tenth of a call's CPU
/// at 3,000 calls/s).
const GATHER: Duration = Duration::from_millis(200);

/// Records that may wait for the writer (a minute at 1,000 calls/s, a few
/// tens of megabytes): past it, a writer stuck on its disk makes records
/// fail (counted and logged), not the daemon's memory grow.
const QUEUE: usize = 60_000;

/// The records' owner: the configuration, the queue to the writer, counts.
pub struct CdrEngine {
    config: CdrFile,
    file: PathBuf,
    tx: parking_lot::Mutex<Option<mpsc::SyncSender<Record>>>,
    writer: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
    posted: AtomicU64,
    written: std::sync::Arc<AtomicU64>,
    failed: std::sync::Arc<AtomicU64>,
}

impl CdrEngine {
    /// Reads `cdr.toml` in `config_dir` (none: the defaults; an error is
    /// logged with its file and line, and the defaults run) and starts the
    /// writer on `log_dir/cdr-csv/Master.csv`.
    pub fn start(config_dir: &Path, log_dir: &Path) -> CdrEngine {
        let path = config_dir.join("cdr.toml");
        let config = match path.exists() {
            true => crate::config::load_toml::<CdrFile>(&path).unwrap_or_else(|e| {
                log::error!("{e}; call detail records with the defaults");
                CdrFile::default()
            }),
            false => CdrFile::default(),
        };
        let file = log_dir.join("cdr-csv").join("Master.csv");
        let (written, failed) = (
            std::sync::Arc::new(AtomicU64::new(0)),
            std::sync::Arc::new(AtomicU64::new(0)),
        );
        let (tx, writer) = match config.general.enable {
            true => {
                let (tx, rx) = mpsc::sync_channel(QUEUE);
                let (path, w, f) = (file.clone(), written.clone(), failed.clone());
                let csv = config.csv.clone();
                let t = std::thread::Builder::new()
                    .name("cdr-csv".into())
                    .spawn(move || write_records(&path, rx, &csv, (&w, &f)))
                    .map_err(|e| log::error!("no call detail records: {e}"))
                    .ok();
                (t.is_some().then_some(tx), t)
            }
            false => (None, None),
        };
        CdrEngine {
            config,
            file,
            tx: parking_lot::Mutex::new(tx),
            writer: parking_lot::Mutex::new(writer),
            posted: AtomicU64::new(0),
            written,
            failed,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &CdrFile {
        &self.config
    }

    /// The file records go to.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Channel `c` ended: its record, if it is one, goes to the writer.
    pub fn channel_ended(&self, c: &Channel) {
        let now = (Instant::now(), SystemTime::now());
        let Some(record) = Record::of(c, now, &self.config.general) else {
            return;
        };
        let sent = match self.tx.lock().as_ref() {
            Some(tx) => tx.try_send(record).is_ok(),
            None => false, // after `finish`: the writer is gone
        };
        if sent {
            self.posted.fetch_add(1, Ordering::Relaxed);
        } else {
            // A writer stuck on its disk (the queue full), or stopped: the
            // record is counted as failed, never held in memory unbounded.
            let n = self.failed.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                log::error!(
                    "CDR for '{}' not written: the writer is {} ({} lost so far)",
                    c.name,
                    if self.tx.lock().is_some() {
                        "behind"
                    } else {
                        "stopped"
                    },
                    n + 1
                );
            }
        }
    }

    /// Records posted, written, and lost to write errors.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.posted.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// At shutdown: what is queued is written, then the writer stops.
    pub fn finish(&self) {
        drop(self.tx.lock().take());
        if let Some(w) = self.writer.lock().take() {
            let _ = w.join();
        }
    }

    /// `cdr show status`, in Asterisk's layout.
    pub fn render_status(&self) -> String {
        let fields = self.status();
        let get = |k: &str| {
            fields
                .iter()
                .find(|(l, _)| *l == k)
                .map_or("", |(_, v)| v.as_str())
        };
        let mut o = String::from(
            "\nCall Detail Record (CDR) settings\n----------------------------------\n",
        );
        let line =
            |o: &mut String, k: &str| o.push_str(&format!("  {:<28}{}\n", format!("{k}:"), get(k)));
        line(&mut o, "Logging");
        line(&mut o, "Mode");
        if self.config.general.enable {
            line(&mut o, "Log calls by default");
            line(&mut o, "Log unanswered calls");
            line(&mut o, "Log congestion");
            o.push('\n');
            line(&mut o, "Ignore bridging changes");
            o.push('\n');
            line(&mut o, "Ignore dial state changes");
            o.push('\n');
            o.push_str(&format!(
                "* Registered Backends\n  -------------------\n    {}\n\n",
                get("Registered Backends")
            ));
            // Not Asterisk's: where the records go, and how many did.
            o.push_str(&format!(
                "  Records: {} posted, {} written, {} failed ({})\n",
                get("Records posted"),
                get("Records written"),
                get("Records failed"),
                get("File")
            ));
        }
        o
    }

    /// `cdr show status`' fields by label (the text's, and the JSON's).
    pub fn status(&self) -> Vec<(&'static str, String)> {
        let g = &self.config.general;
        let yes = |b: bool| if b { "Yes" } else { "No" }.to_string();
        let mut v = vec![
            (
                "Logging",
                if g.enable { "Enabled" } else { "Disabled" }.to_string(),
            ),
            ("Mode", "Simple".to_string()),
        ];
        if g.enable {
            let (posted, written, failed) = self.counts();
            v.extend([
                ("Log calls by default", yes(true)),
                ("Log unanswered calls", yes(g.unanswered)),
                ("Log congestion", yes(g.congestion)),
                ("Ignore bridging changes", yes(false)),
                ("Ignore dial state changes", yes(false)),
                ("Registered Backends", "csv".to_string()),
                ("Records posted", posted.to_string()),
                ("Records written", written.to_string()),
                ("Records failed", failed.to_string()),
                ("File", self.file.display().to_string()),
            ]);
        }
        v
    }
}

/// The writer thread: appends the records queued to `path` (made with its
/// directory when missing), all those queued at once in one write; with
/// `accountlogs`, each record with an accountcode to `<accountcode>.csv`
/// beside it too (not one that would leave the directory, as cdr_csv).
fn write_records(
    path: &Path,
    rx: mpsc::Receiver<Record>,
    csv: &CsvConfig,
    (written, failed): (&AtomicU64, &AtomicU64),
) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let append = |file: &Path, text: &str| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)?;
        f.write_all(text.as_bytes())
    };
    let mut master = String::new();
    let mut accounts: std::collections::BTreeMap<String, String> = Default::default();
    while let Ok(first) = rx.recv() {
        std::thread::sleep(GATHER);
        master.clear();
        accounts.clear();
        let mut n = 0;
        let zone = zone(csv);
        for r in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            let line = r.csv_line(csv, zone);
            if csv.accountlogs && !r.accountcode.is_empty() {
                if r.accountcode.contains('/') || r.accountcode.starts_with('.') {
                    log::error!("Account code '{}' insecure for writing file", r.accountcode);
                } else {
                    accounts.entry(r.accountcode).or_default().push_str(&line);
                }
            }
            master.push_str(&line);
            n += 1;
        }
        // Opened per batch: a file moved away by logrotate is made anew.
        match append(path, &master) {
            Ok(()) => written.fetch_add(n, Ordering::Relaxed),
            Err(e) => {
                log::error!("Unable to write {n} CDR(s) to {}: {e}", path.display());
                failed.fetch_add(n, Ordering::Relaxed)
            }
        };
        for (account, text) in &accounts {
            let file = dir.join(format!("{account}.csv"));
            if let Err(e) = append(&file, text) {
                log::error!("Unable to write CDR(s) to {}: {e}", file.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            accountcode: "sales".into(),
            src: "1000".into(),
            dst: "2000".into(),
            dcontext: "default".into(),
            clid: clid("Alice", "1000"),
            channel: "SIP/alice-00000001".into(),
            dstchannel: "SIP/bob-00000002".into(),
            lastapp: "Dial".into(),
            lastdata: "SIP/bob,30".into(),
            end: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_060),
            duration: Duration::from_millis(60_400),
            answered_after: Some(Duration::from_millis(5_000)),
            disposition: Disposition::Answered,
            uniqueid: "1700000000.1".into(),
            userfield: String::new(),
        }
    }

    #[test]
    fn a_record_reads_as_cdr_csv_writes_it() {
        assert_eq!(
            record().csv_line(
                &CsvConfig::default(),
                chrono::FixedOffset::east_opt(0).unwrap()
            ),
            "\"sales\",\"1000\",\"2000\",\"default\",\"\"\"Alice\"\" <1000>\",\
             \"SIP/alice-00000001\",\"SIP/bob-00000002\",\"Dial\",\"SIP/bob,30\",\
             \"2023-11-14 22:13:19\",\"2023-11-14 22:13:24\",\"2023-11-14 22:14:20\",60,55,\
             \"ANSWERED\",\"DOCUMENTATION\",\"1700000000.1\",\"\"\n"
        );
        let mut unanswered = record();
        (unanswered.answered_after, unanswered.disposition) = (None, Disposition::NoAnswer);
        let csv = CsvConfig {
            usegmtime: true,
            loguniqueid: false,
            loguserfield: false,
            accountlogs: false,
        };
        let line = unanswered.csv_line(&csv, zone(&csv));
        assert!(
            line.ends_with(",\"2023-11-14 22:13:19\",,\"2023-11-14 22:14:20\",60,0,\"NO ANSWER\",\"DOCUMENTATION\"\n"),
            "{line}"
        );
    }

    #[test]
    fn caller_id_is_merged_as_asterisk_does() {
        assert_eq!(clid("Alice", "1000"), "\"Alice\" <1000>");
        assert_eq!(clid("", "1000"), "\"\" <1000>");
        assert_eq!(clid("A \"B\" \\C", ""), "\"A \\\"B\\\" \\\\C\" <>");
    }

    #[test]
    fn unanswered_calls_are_told_apart_as_cdr_c_does() {
        let s = |st, congestion| Disposition::of_dialstatus(st, congestion).as_str();
        assert_eq!(s("BUSY", false), "BUSY");
        assert_eq!(s("CANCEL", false), "NO ANSWER");
        assert_eq!(s("CONGESTION", false), "FAILED");
        assert_eq!(s("CONGESTION", true), "CONGESTION");
        assert_eq!(s("CHANUNAVAIL", false), "FAILED");
        let c = |c, congestion| Disposition::of_cause(c, congestion).map(Disposition::as_str);
        assert_eq!(c(Cause::USER_BUSY, false), Some("BUSY"));
        assert_eq!(c(Cause::NO_ANSWER, false), Some("NO ANSWER"));
        assert_eq!(c(Cause::NORMAL_CLEARING, false), Some("NO ANSWER"));
        assert_eq!(c(Cause::CONGESTION, false), Some("FAILED"));
        assert_eq!(c(Cause::CONGESTION, true), Some("CONGESTION"));
        assert_eq!(c(Cause::INTERWORKING, false), None);
    }

    /// The marks follow the dialplan until the bridge, then stay; `h`
    /// changes nothing.
    #[test]
    fn marks_freeze_at_the_bridge() {
        let mut m = CdrMarks::default();
        m.step("default", "2000", "Dial", "SIP/bob,30");
        m.bridged("SIP/bob-00000002");
        m.step("default", "2000", "Hangup", "");
        m.step("default", "h", "NoOp", "bye");
        assert_eq!((m.dst.as_str(), m.lastapp.as_str()), ("2000", "Dial"));
        assert_eq!(m.dstchannel, "SIP/bob-00000002");
        let mut m = CdrMarks::default();
        m.step("default", "2000", "Playback", "hello");
        m.step("default", "h", "NoOp", "bye");
        assert_eq!(
            (m.dst.as_str(), m.lastapp.as_str()),
            ("2000", "Playback"),
            "h runs after the record is closed (endbeforehexten)"
        );
    }

    /// A failed Dial is what the record shows, not the Busy() after it; a
    /// second Dial that is answered replaces it; after the bridge nothing
    /// changes.
    #[test]
    fn a_failed_dial_stays_until_another_dial() {
        let mut m = CdrMarks::default();
        m.step("default", "2000", "Dial", "SIP/bob,5");
        m.dialing("SIP/bob-1", ("default", "2000"), ("Dial", "SIP/bob,5"));
        m.dial_failed(Cause::USER_BUSY);
        m.step("default", "2000", "Busy", "");
        assert_eq!(
            (m.lastapp.as_str(), m.dstchannel.as_str()),
            ("Dial", "SIP/bob-1")
        );
        assert_eq!(m.dialed_cause, Some(Cause::USER_BUSY));
        m.step("default", "2000", "Dial", "SIP/carol,5");
        m.dialing("SIP/carol-2", ("default", "2000"), ("Dial", "SIP/carol,5"));
        assert_eq!((m.lastdata.as_str(), m.dialed_cause), ("SIP/carol,5", None));
        m.dial_failed(Cause::NO_ANSWER); // a fork cancelled as the other answers
        m.bridged("SIP/carol-3");
        m.dial_failed(Cause::USER_BUSY);
        m.dialing("SIP/dave-4", ("default", "2000"), ("Dial", "SIP/dave"));
        assert_eq!(
            (m.dstchannel.as_str(), m.lastdata.as_str()),
            ("SIP/carol-3", "SIP/carol,5")
        );
    }

    /// Every record queued is written, in order, before `finish` returns.
    #[test]
    fn the_writer_writes_everything_queued() {
        let dir = tempfile::tempdir().unwrap();
        let engine = CdrEngine::start(dir.path(), dir.path());
        for i in 0..100 {
            let mut r = record();
            r.uniqueid = format!("u{i}");
            r.accountcode = ["sales", "../x", ""][i % 3].into();
            engine.tx.lock().as_ref().unwrap().try_send(r).unwrap();
        }
        engine.finish();
        let text = std::fs::read_to_string(dir.path().join("cdr-csv/Master.csv")).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| l.rsplit(',').nth(1).unwrap().trim_matches('"').to_string())
            .collect();
        assert_eq!(ids, (0..100).map(|i| format!("u{i}")).collect::<Vec<_>>());
        assert_eq!(engine.counts().1, 100);
        let sales = std::fs::read_to_string(dir.path().join("cdr-csv/sales.csv")).unwrap();
        assert_eq!(sales.lines().count(), 34, "accountlogs");
        assert!(
            !dir.path().join("x.csv").exists(),
            "no path out of the directory"
        );
    }
}
