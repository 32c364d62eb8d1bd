//! The actions, each as Asterisk 16+ answers it (`main/manager.c`): the
//! response, then for lists `EventList: start`, one event per item and a
//! `…Complete` event, every piece carrying the action's `ActionID`.

use crate::backend::{Backend, OriginateRequest};
use crate::message::{Message, Reply};
use crate::perms::Perms;
use crate::session::{Output, PendingOriginate};
use sirius_abi::Cause;
use sirius_core::originate::OriginateTarget;

/// The actions, their write class (Asterisk's authority) and a line for
/// `ListCommands`. `Login`, `Logoff` and `Challenge` are the session's.
pub const ACTIONS: &[(&str, Perms, &str)] = &[
    ("Ping", Perms::NONE, "Keepalive command."),
    ("Events", Perms::NONE, "Control Event Flow."),
    (
        "ListCommands",
        Perms::NONE,
        "List available manager commands.",
    ),
    ("Command", Perms::COMMAND, "Execute Asterisk CLI Command."),
    (
        "CoreShowChannels",
        Perms(Perms::SYSTEM.0 | Perms::REPORTING.0),
        "List currently active channels.",
    ),
    (
        "Status",
        Perms(Perms::SYSTEM.0 | Perms::CALL.0 | Perms::REPORTING.0),
        "List channel status.",
    ),
    (
        "Hangup",
        Perms(Perms::SYSTEM.0 | Perms::CALL.0),
        "Hangup channel.",
    ),
    ("Redirect", Perms::CALL, "Redirect (transfer) a call."),
    (
        "Getvar",
        Perms(Perms::CALL.0 | Perms::REPORTING.0),
        "Gets a channel variable or function value.",
    ),
    (
        "Setvar",
        Perms::CALL,
        "Sets a channel variable or function value.",
    ),
    ("Originate", Perms::ORIGINATE, "Originate a call."),
    (
        "CoreSettings",
        Perms(Perms::SYSTEM.0 | Perms::REPORTING.0),
        "Show PBX core settings (version etc).",
    ),
    (
        "CoreStatus",
        Perms(Perms::SYSTEM.0 | Perms::REPORTING.0),
        "Show PBX core status variables.",
    ),
    (
        "ExtensionState",
        Perms(Perms::CALL.0 | Perms::REPORTING.0),
        "Check Extension Status.",
    ),
    (
        "Reload",
        Perms(Perms::SYSTEM.0 | Perms::CONFIG.0),
        "Send a reload event.",
    ),
    ("UserEvent", Perms::USER, "Send an arbitrary event."),
    ("SIPpeers", Perms::SYSTEM, "List SIP peers (text format)."),
    ("SIPshowpeer", Perms::SYSTEM, "show SIP peer (text format)."),
];

/// The write class an action needs (lower-case name); `None`: no such action.
pub fn class_of(action: &str) -> Option<Perms> {
    ACTIONS
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(action))
        .map(|(_, p, _)| *p)
}

/// Runs an authenticated, permitted action (lower-case name).
pub fn run(action: &str, m: &Message, backend: &dyn Backend) -> Vec<Output> {
    let text = match action {
        "ping" => ping(m),
        "listcommands" => list_commands(m),
        "command" => command(m, backend),
        "coreshowchannels" => core_show_channels(m, backend),
        "status" => status(m, backend),
        "hangup" => hangup(m, backend),
        "redirect" => redirect(m, backend),
        "getvar" => getvar(m, backend),
        "setvar" => setvar(m, backend),
        "coresettings" => core_settings(m, backend),
        "corestatus" => core_status(m, backend),
        "extensionstate" => extension_state(m, backend),
        "reload" => reload(m, backend),
        "userevent" => user_event(m, backend),
        "sippeers" => crate::sip::sip_peers(m, backend),
        "sipshowpeer" => crate::sip::sip_show_peer(m, backend),
        "originate" => return originate(m, backend),
        _ => Reply::error(m, "Invalid/unknown command"),
    };
    vec![Output::Write(text)]
}

fn ping(m: &Message) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut r = Reply::response("Success", m);
    r.kv("Ping", "Pong").kv(
        "Timestamp",
        &format!("{}.{:06}", now.as_secs(), now.subsec_micros()),
    );
    r.end()
}

fn list_commands(m: &Message) -> String {
    let mut r = Reply::response("Success", m);
    for (name, perms, what) in ACTIONS {
        let class = if *perms == Perms::NONE {
            "<none>".to_string()
        } else {
            perms.user_list()
        };
        r.kv(name, &format!("{what}  (Priv: {class})"));
    }
    r.end()
}

/// `CoreSettings` (action_coresettings): what a dashboard reads first to
/// learn whom it talks to.
fn core_settings(m: &Message, backend: &dyn Backend) -> String {
    let i = backend.core_info();
    let yes = |b: bool| if b { "Yes" } else { "No" };
    let mut r = Reply::response("Success", m);
    r.kv("AMIversion", crate::server::AMI_VERSION)
        .kv("AsteriskVersion", &i.version)
        .kv("SystemName", &i.systemname)
        .kv("CoreMaxCalls", &i.maxcalls.to_string())
        .kv("CoreMaxLoadAvg", &format!("{:.6}", i.maxload))
        .kv("CoreRunUser", "")
        .kv("CoreRunGroup", "")
        .kv("CoreMaxFilehandles", &i.maxfiles.to_string())
        .kv("CoreRealTimeEnabled", "No")
        .kv("CoreCDRenabled", yes(i.cdr))
        .kv("CoreHTTPenabled", "No")
        .kv("SoundsSearchCustomDir", "No");
    r.end()
}

/// `CoreStatus` (action_corestatus): start and reload in local time, live
/// channels, calls processed.
fn core_status(m: &Message, backend: &dyn Backend) -> String {
    let i = backend.core_info();
    let (up, reload) = backend.uptime();
    let at = |ago: u64| {
        chrono::Local::now() - chrono::Duration::seconds(ago.min(i64::MAX as u64) as i64)
    };
    let (start, reloaded) = (at(up), at(reload));
    let mut r = Reply::response("Success", m);
    r.kv("CoreStartupDate", &start.format("%Y-%m-%d").to_string())
        .kv("CoreStartupTime", &start.format("%H:%M:%S").to_string())
        .kv("CoreReloadDate", &reloaded.format("%Y-%m-%d").to_string())
        .kv("CoreReloadTime", &reloaded.format("%H:%M:%S").to_string())
        .kv("CoreCurrentCalls", &i.channels.to_string())
        .kv("CoreProcessedCalls", &i.processed.to_string());
    r.end()
}

/// `Reload`: `Module: chan_sip` reloads one module, none reloads all
/// (the console's `module reload`).
fn reload(m: &Message, backend: &dyn Backend) -> String {
    let module = m.get("Module");
    if module.contains(|c: char| c.is_whitespace() || c == '"') {
        return Reply::error(m, "No such module");
    }
    let line = if module.is_empty() {
        "module reload".to_string()
    } else {
        format!("module reload {module}")
    };
    match backend.command(&line) {
        (true, _) => Reply::ack(m, "Module Reloaded"),
        (false, out) => Reply::error(m, out.lines().next().unwrap_or("Reload failed")),
    }
}

/// `UserEvent`: the client's own event (`UserEvent: <name>` and its other
/// headers) to every session reading `user` (action_userevent).
fn user_event(m: &Message, backend: &dyn Backend) -> String {
    let name = m.get("UserEvent");
    if name.is_empty() {
        return Reply::error(m, "Missing UserEvent");
    }
    let fields = m
        .headers
        .iter()
        .filter(|(k, _)| !["action", "actionid"].contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.clone(), v.clone()));
    let mut all = vec![("UserEvent".to_string(), name.to_string())];
    all.extend(fields.filter(|(k, _)| !k.eq_ignore_ascii_case("UserEvent")));
    backend.user_event(all);
    Reply::ack(m, "Event Sent")
}

/// `ExtensionState` (action_extensionstate): a hint's state now; `Status:
/// -1` and no hint when the extension has none.
fn extension_state(m: &Message, backend: &dyn Backend) -> String {
    let exten = m.get("Exten");
    let context = match m.get("Context") {
        "" => "default",
        c => c,
    };
    let (hint, status, text) =
        backend
            .extension_state(context, exten)
            .unwrap_or((String::new(), -1, "Unknown"));
    let mut r = Reply::response("Success", m);
    r.kv("Message", "Extension Status")
        .kv("Exten", exten)
        .kv("Context", context)
        .kv("Hint", &hint)
        .kv("Status", &status.to_string())
        .kv("StatusText", text);
    r.end()
}

/// `Command`: the console's answer as Asterisk 14+ gives it: `Response:
/// Success` (or `Error` when the command failed), `Message: Command output
/// follows`, then one `Output:` line per line of output (panoramisk and
/// pyst2 read these; the old `Response: Follows` … `--END COMMAND--` form
/// is gone since Asterisk 14).
fn command(m: &Message, backend: &dyn Backend) -> String {
    let line = m.get("Command");
    if line.is_empty() {
        return Reply::error(m, "No command provided");
    }
    // Asterisk's blacklist: commands that would stop the PBX from AMI.
    let words: Vec<String> = line
        .split_whitespace()
        .take(2)
        .map(str::to_ascii_lowercase)
        .collect();
    if matches!(words.as_slice(), [a, b] if a == "module" && (b == "unload" || b == "load"))
        || matches!(words.as_slice(), [a, ..] if a == "quit" || a == "exit")
    {
        return Reply::error(m, "Command blacklisted");
    }
    let (ok, out) = backend.command(line);
    let mut r = Reply::response(if ok { "Success" } else { "Error" }, m);
    r.kv("Message", "Command output follows");
    let out = out.strip_suffix('\n').unwrap_or(&out);
    for l in out.split('\n') {
        r.kv("Output", l.strip_suffix('\r').unwrap_or(l));
    }
    r.end()
}

/// `EventList: Complete` and `ListItems` closing a list.
fn list_complete(m: &Message, event: &str, count: usize, extra: &[(&str, &str)]) -> String {
    let mut r = Reply::event(event);
    r.action_id(m)
        .kv("EventList", "Complete")
        .kv("ListItems", &count.to_string());
    for (k, v) in extra {
        r.kv(k, v);
    }
    r.end()
}

/// The first message of a list.
pub(crate) fn list_start(m: &Message, message: &str) -> String {
    let mut r = Reply::response("Success", m);
    r.kv("EventList", "start").kv("Message", message);
    r.end()
}

fn core_show_channels(m: &Message, backend: &dyn Backend) -> String {
    let chans = backend.channels();
    let mut out = list_start(m, "Channels will follow");
    for c in &chans {
        let mut r = Reply::event("CoreShowChannel");
        let s = c.seconds;
        r.action_id(m)
            .fields(&c.block)
            .kv("Application", &c.application)
            .kv("ApplicationData", &c.data)
            .kv(
                "Duration",
                &format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
            )
            .kv("BridgeId", &c.bridge_id);
        out.push_str(&r.end());
    }
    out.push_str(&list_complete(
        m,
        "CoreShowChannelsComplete",
        chans.len(),
        &[],
    ));
    out
}

fn status(m: &Message, backend: &dyn Backend) -> String {
    let name = m.get("Channel");
    let chans = if name.is_empty() {
        backend.channels()
    } else {
        match backend.channel(name) {
            Some(c) => vec![c],
            None => return Reply::error(m, "No such channel"),
        }
    };
    let wanted: Vec<&str> = m
        .get("Variables")
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let mut out = list_start(m, "Channel status will follow");
    for c in &chans {
        let mut r = Reply::event("Status");
        r.kv("Privilege", "Call")
            .fields(&c.block)
            .kv("Type", &c.tech)
            .kv("DNID", "")
            .kv("EffectiveConnectedLineNum", "<unknown>")
            .kv("EffectiveConnectedLineName", "<unknown>")
            .kv("TimeToHangup", "0")
            .kv("BridgeID", &c.bridge_id)
            .kv("Application", &c.application)
            .kv("Data", &c.data)
            .kv("Seconds", &c.seconds.to_string());
        for v in &wanted {
            let value = c
                .vars
                .iter()
                .find(|(k, _)| k.trim_start_matches('_') == *v)
                .map_or("", |(_, x)| x.as_str());
            r.kv("Variable", &format!("{v}={value}"));
        }
        r.action_id(m);
        out.push_str(&r.end());
    }
    let n = chans.len().to_string();
    out.push_str(&list_complete(
        m,
        "StatusComplete",
        chans.len(),
        &[("Items", &n)],
    ));
    out
}

fn hangup(m: &Message, backend: &dyn Backend) -> String {
    let name = m.get("Channel");
    if name.is_empty() {
        return Reply::error(m, "No channel specified");
    }
    let cause = m
        .get("Cause")
        .trim()
        .parse::<u8>()
        .map(|n| Cause(n.into()))
        .unwrap_or(Cause::NORMAL_CLEARING);
    // Asterisk 13+: a channel name between slashes is a regular
    // expression; Sirius takes names only (a leading slash is refused).
    if name.starts_with('/') {
        return Reply::error(m, "Regular expressions are not supported");
    }
    match backend.hangup(name, cause) {
        Ok(_) => Reply::ack(m, "Channel Hungup"),
        Err(e) => Reply::error(m, &e),
    }
}

fn redirect(m: &Message, backend: &dyn Backend) -> String {
    let (name, exten) = (m.get("Channel"), m.get("Exten"));
    if name.is_empty() {
        return Reply::error(m, "Channel not specified");
    }
    if exten.is_empty() {
        return Reply::error(m, "Exten not specified");
    }
    let priority = match m.get("Priority").trim() {
        "" => 1,
        p => match p.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => return Reply::error(m, "Invalid priority"),
        },
    };
    match backend.redirect(name, m.get("Context"), exten, priority) {
        Ok(()) => Reply::ack(m, "Redirect successful"),
        Err(e) => Reply::error(m, &e),
    }
}

fn getvar(m: &Message, backend: &dyn Backend) -> String {
    let var = m.get("Variable");
    if var.is_empty() {
        return Reply::error(m, "No variable specified");
    }
    // Asterisk refuses functions that run programs to users without `system`;
    // Sirius has no such function, so the name is only read.
    match backend.getvar(m.get("Channel"), var) {
        Ok(value) => {
            let mut r = Reply::response("Success", m);
            r.kv("Variable", var).kv("Value", &value);
            r.end()
        }
        Err(e) => Reply::error(m, &e),
    }
}

fn setvar(m: &Message, backend: &dyn Backend) -> String {
    let var = m.get("Variable");
    if var.is_empty() {
        return Reply::error(m, "No variable specified");
    }
    match backend.setvar(m.get("Channel"), var, m.get("Value")) {
        Ok(()) => Reply::ack(m, "Variable Set"),
        Err(e) => Reply::error(m, &e),
    }
}

/// `Originate`: `Channel: Tech/resource` and either `Exten` (+ `Context`)
/// or `Application` (+ `Data`). The call is placed here; its outcome (the
/// answer, or why not) comes later as `OriginateResponse`, which the
/// server writes when the call is answered or ends (`Async: yes` answers
/// `Originate successfully queued` at once; otherwise the response waits).
fn originate(m: &Message, backend: &dyn Backend) -> Vec<Output> {
    let err = |text: &str| vec![Output::Write(Reply::error(m, text))];
    let channel = m.get("Channel");
    let Some((tech, resource)) = channel
        .split_once('/')
        .filter(|(t, r)| !t.is_empty() && !r.is_empty())
    else {
        return err("Invalid channel");
    };
    let (exten, app) = (m.get("Exten"), m.get("Application"));
    let target = if !app.is_empty() {
        OriginateTarget::Application {
            app: app.to_string(),
            data: m.get("Data").to_string(),
        }
    } else if !exten.is_empty() {
        let context = match m.get("Context") {
            "" => "default",
            c => c,
        };
        OriginateTarget::Extension {
            context: context.to_string(),
            exten: exten.to_string(),
        }
    } else {
        return err("Exten not specified");
    };
    let vars = m
        .all("Variable")
        .flat_map(|v| v.split(','))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect();
    let caller_id = match m.get("CallerID") {
        "" => None,
        cid => Some(parse_callerid(cid)),
    };
    let req = OriginateRequest {
        tech: tech.to_string(),
        resource: resource.to_string(),
        target,
        vars,
        caller_id,
        account: m.get("Account").to_string(),
    };
    let sync = !is_true(m.get("Async"));
    match backend.originate(&req) {
        Ok(placed) => {
            let pending = Output::AwaitOriginate(PendingOriginate {
                chan: placed.id,
                name: placed.name,
                uniqueid: placed.uniqueid,
                action: m.clone(),
                sync,
            });
            if sync {
                vec![pending]
            } else {
                vec![
                    Output::Write(Reply::ack(m, "Originate successfully queued")),
                    pending,
                ]
            }
        }
        Err(cause) => {
            log::info!(
                "AMI Originate to {channel} failed (cause {} - {})",
                cause.0,
                cause.description()
            );
            if sync {
                return err("Originate failed");
            }
            // Queued, then failed at once: the event says so.
            let mut ev = originate_response(m, false, channel, "", reason_of(cause));
            ev.insert_str(0, &Reply::ack(m, "Originate successfully queued"));
            vec![Output::Write(ev)]
        }
    }
}

/// Asterisk's `ast_true`.
pub(crate) fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "y" | "t" | "1" | "on"
    )
}

/// `"Name" <num>`, `Name <num>` or `num` → (number, name).
fn parse_callerid(cid: &str) -> (String, String) {
    match (cid.find('<'), cid.rfind('>')) {
        (Some(a), Some(b)) if a < b => (
            cid[a + 1..b].trim().to_string(),
            cid[..a].trim().trim_matches('"').to_string(),
        ),
        _ => (cid.trim().to_string(), String::new()),
    }
}

/// `OriginateResponse`'s `Reason`: Asterisk's control frame the call
/// ended on (4 answered, 5 busy, 8 congestion, 3 rang out, 1 hung up, 0
/// never placed).
pub fn reason_of(cause: Cause) -> u32 {
    match cause {
        Cause::USER_BUSY => 5,
        Cause::CONGESTION | Cause::SWITCH_CONGESTION => 8,
        Cause::NO_ANSWER | Cause::NO_USER_RESPONSE => 3,
        Cause::NORMAL_CLEARING => 1,
        _ => 0,
    }
}

/// The `OriginateResponse` event (`fast_originate` in manager.c).
pub fn originate_response(
    m: &Message,
    success: bool,
    channel: &str,
    uniqueid: &str,
    reason: u32,
) -> String {
    let mut r = Reply::event("OriginateResponse");
    r.kv("Privilege", &Perms::CALL.privilege())
        .action_id(m)
        .kv("Response", if success { "Success" } else { "Failure" })
        .kv("Channel", channel);
    if m.get("Application").is_empty() {
        let context = match m.get("Context") {
            "" => "default",
            c => c,
        };
        r.kv("Context", context).kv("Exten", m.get("Exten"));
    } else {
        r.kv("Application", m.get("Application"))
            .kv("Data", m.get("Data"));
    }
    let (num, name) = parse_callerid(m.get("CallerID"));
    let unknown = |s: &str| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    r.kv("Reason", &reason.to_string())
        .kv("Uniqueid", &unknown(uniqueid))
        .kv("CallerIDNum", &unknown(&num))
        .kv("CallerIDName", &unknown(&name));
    r.end()
}
