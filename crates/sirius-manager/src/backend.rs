//! What actions ask of the PBX, as a trait: the session and its actions
//! are tested on a fake (no core, no sockets); [`CoreBackend`] answers from
//! the running core and the console's command table.

use sirius_abi::{Cause, ChannelId};
use sirius_core::originate::OriginateTarget;
use sirius_core::Core;
use std::sync::Arc;

/// Runs one console command line as the console does: (succeeded, output);
/// with `json` true, a show command's JSON form (`sirius -rx --json`).
/// The daemon passes the console's command table in, so `Command` sees
/// every built-in and plugin command and the manager need not depend on
/// the console crate.
pub type CommandRunner = Arc<dyn Fn(&str, bool) -> (bool, String) + Send + Sync>;

/// A channel as actions show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelView {
    /// `SIP/alice-00000001`.
    pub name: String,
    /// `SIP`.
    pub tech: String,
    /// Asterisk's channel block (`Channel` … `Linkedid`).
    pub block: Vec<(String, String)>,
    /// Application running.
    pub application: String,
    /// Its arguments.
    pub data: String,
    /// Seconds since the channel was created.
    pub seconds: u64,
    /// Its bridge's uniqueid, or empty.
    pub bridge_id: String,
    /// Its variables.
    pub vars: Vec<(String, String)>,
}

/// An `Originate` action, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginateRequest {
    /// Technology (`SIP`).
    pub tech: String,
    /// Resource (`bob`).
    pub resource: String,
    /// What runs once it answers.
    pub target: OriginateTarget,
    /// `Variable: a=b` headers, set on the new channel.
    pub vars: Vec<(String, String)>,
    /// `CallerID` (number, name) recorded on the new channel.
    pub caller_id: Option<(String, String)>,
    /// `Account`.
    pub account: String,
}

/// A call placed by `Originate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originated {
    /// The new channel.
    pub id: ChannelId,
    /// Its name.
    pub name: String,
    /// Its uniqueid.
    pub uniqueid: String,
}

/// The core's facts `CoreSettings` and `CoreStatus` report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoreInfo {
    /// `core show version`'s first words (`Sirius 0.1.0`).
    pub version: String,
    /// `systemname`.
    pub systemname: String,
    /// `maxcalls` (0: none).
    pub maxcalls: u32,
    /// `maxload` (0: off).
    pub maxload: f64,
    /// `maxfiles`.
    pub maxfiles: u64,
    /// Whether call detail records are written.
    pub cdr: bool,
    /// Live channels.
    pub channels: usize,
    /// Calls processed since start.
    pub processed: u64,
}

/// What the actions need of the PBX.
pub trait Backend: Send + Sync {
    /// Runs a console command: (succeeded, output).
    fn command(&self, line: &str) -> (bool, String);
    /// A show command's rows and fields (its JSON form), or why not.
    fn command_json(&self, line: &str) -> Result<serde_json::Value, String>;
    /// Every channel, oldest first.
    fn channels(&self) -> Vec<ChannelView>;
    /// One channel by name (exact, else a unique prefix).
    fn channel(&self, name: &str) -> Option<ChannelView>;
    /// Hangs a channel up; its name, or why not.
    fn hangup(&self, name: &str, cause: Cause) -> Result<String, String>;
    /// A channel's variable (`channel` empty: a global one).
    fn getvar(&self, channel: &str, var: &str) -> Result<String, String>;
    /// Sets a channel's variable.
    fn setvar(&self, channel: &str, var: &str, value: &str) -> Result<(), String>;
    /// Sends a channel elsewhere in the dialplan.
    fn redirect(
        &self,
        channel: &str,
        context: &str,
        exten: &str,
        priority: u32,
    ) -> Result<(), String>;
    /// Places a call; the technology's cause when refused.
    fn originate(&self, req: &OriginateRequest) -> Result<Originated, Cause>;
    /// Seconds since start and since the last reload.
    fn uptime(&self) -> (u64, u64);
    /// Versions, limits and counters (`CoreSettings`, `CoreStatus`).
    fn core_info(&self) -> CoreInfo {
        CoreInfo::default()
    }
    /// Publishes a client's `UserEvent` to every session reading `user`.
    fn user_event(&self, _fields: Vec<(String, String)>) {}
    /// The hint of `exten@context` and its state now: (devices joined by
    /// `&`, Asterisk's state number, its name); `None` without a hint.
    fn extension_state(&self, _context: &str, _exten: &str) -> Option<(String, i32, &'static str)> {
        None
    }
}

/// The backend of the running daemon.
pub struct CoreBackend {
    /// The core.
    pub core: Arc<Core>,
    /// The console's command table.
    pub run: CommandRunner,
}

impl CoreBackend {
    fn view(&self, c: &sirius_core::channels::Channel) -> ChannelView {
        let mut e = sirius_core::events::Event::new("");
        e.channel("", c, &self.core.channels.linkedid(c));
        let bridge_id = self
            .core
            .bridges
            .snapshot()
            .into_iter()
            .find(|b| b.channels.contains(&c.id))
            .map(|b| b.id)
            .unwrap_or_default();
        ChannelView {
            name: c.name.clone(),
            tech: c.tech.clone(),
            block: e.fields,
            application: c.application.clone(),
            data: c.app_data.clone(),
            seconds: c.created.elapsed().as_secs(),
            bridge_id,
            vars: c
                .vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// Variables Asterisk computes rather than stores, as Getvar reads them.
fn builtin(c: &sirius_core::channels::Channel, var: &str) -> Option<String> {
    Some(match var {
        "CHANNEL" => c.name.clone(),
        "UNIQUEID" => c.uniqueid.clone(),
        "CONTEXT" => c.context.clone(),
        "EXTEN" => c.exten.clone(),
        "PRIORITY" => c.priority.to_string(),
        "CALLERID(num)" | "CALLERID(number)" => c.caller_num.clone(),
        "CALLERID(name)" => c.caller_name.clone(),
        "CHANNEL(state)" => c.state.as_str().to_string(),
        "HANGUPCAUSE" => c.cause.0.to_string(),
        "ACCOUNTCODE" | "CHANNEL(accountcode)" => c.accountcode.clone(),
        _ => return None,
    })
}

impl Backend for CoreBackend {
    fn command(&self, line: &str) -> (bool, String) {
        (self.run)(line, false)
    }

    fn command_json(&self, line: &str) -> Result<serde_json::Value, String> {
        let (ok, text) = (self.run)(line, true);
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        match v["error"].as_str() {
            Some(e) if !ok => Err(e.to_string()),
            _ if !ok => Err(text),
            _ => Ok(v),
        }
    }

    fn channels(&self) -> Vec<ChannelView> {
        self.core
            .channels
            .snapshot()
            .iter()
            .map(|c| self.view(c))
            .collect()
    }

    fn channel(&self, name: &str) -> Option<ChannelView> {
        self.core.channels.find(name).map(|c| self.view(&c))
    }

    fn hangup(&self, name: &str, cause: Cause) -> Result<String, String> {
        let c = self.core.channels.find(name).ok_or("No such channel")?;
        let _ = self.core.hangup(c.id, cause);
        Ok(c.name)
    }

    fn getvar(&self, channel: &str, var: &str) -> Result<String, String> {
        if channel.is_empty() {
            // Globals live in the dialplan engine, which does not lend
            // them out: an unknown global reads as empty, as in Asterisk.
            return Ok(String::new());
        }
        let c = self.core.channels.find(channel).ok_or("No such channel")?;
        Ok(builtin(&c, var)
            .or_else(|| c.vars.fetch(var).map(str::to_string))
            .unwrap_or_default())
    }

    fn setvar(&self, channel: &str, var: &str, value: &str) -> Result<(), String> {
        if channel.is_empty() {
            return Err("Variable not set".into());
        }
        let c = self.core.channels.find(channel).ok_or("No such channel")?;
        if self
            .core
            .channels
            .update(c.id, |c| c.vars.store(var, value))
        {
            Ok(())
        } else {
            Err("No such channel".into())
        }
    }

    fn redirect(
        &self,
        channel: &str,
        context: &str,
        exten: &str,
        priority: u32,
    ) -> Result<(), String> {
        let c = self
            .core
            .channels
            .find(channel)
            .ok_or("Channel specified does not exist")?;
        let context = if context.is_empty() {
            c.context.as_str()
        } else {
            context
        };
        self.core
            .redirect(c.id, context, exten, priority)
            .map_err(|cause| match cause {
                Cause::UNALLOCATED => "Extension does not exist.".to_string(),
                other => format!("Redirect failed ({})", other.description()),
            })
    }

    fn originate(&self, req: &OriginateRequest) -> Result<Originated, Cause> {
        let id = self
            .core
            .originate(&req.tech, &req.resource, req.target.clone())?;
        let mut out = None;
        self.core.channels.update(id, |c| {
            c.vars
                .extend(req.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if let Some((num, name)) = &req.caller_id {
                c.caller_num.clone_from(num);
                c.caller_name.clone_from(name);
            }
            if !req.account.is_empty() {
                c.accountcode.clone_from(&req.account);
            }
            out = Some((c.name.clone(), c.uniqueid.clone()));
        });
        // A channel gone already (refused at once) is still the call placed.
        let (name, uniqueid) =
            out.unwrap_or_else(|| (format!("{}/{}", req.tech, req.resource), String::new()));
        Ok(Originated { id, name, uniqueid })
    }

    fn uptime(&self) -> (u64, u64) {
        (
            self.core.started.elapsed().as_secs(),
            self.core.last_reload.lock().elapsed().as_secs(),
        )
    }

    fn user_event(&self, fields: Vec<(String, String)>) {
        self.core.events.publish(sirius_core::events::Event {
            name: "UserEvent".into(),
            fields,
        });
    }

    fn extension_state(&self, context: &str, exten: &str) -> Option<(String, i32, &'static str)> {
        let hint = self
            .core
            .hints()
            .into_iter()
            .find(|h| h.context == context && h.exten == exten)?;
        let state = self.core.hint_state(&hint);
        Some((hint.devices.join("&"), state.bits(), state.as_str()))
    }

    fn core_info(&self) -> CoreInfo {
        let g = &self.core.settings.general;
        CoreInfo {
            version: format!("Sirius {}", sirius_core::VERSION),
            systemname: g.systemname.clone(),
            maxcalls: g.maxcalls,
            maxload: g.maxload,
            maxfiles: g.maxfiles,
            cdr: true,
            channels: self.core.channels.active_channels(),
            processed: self.core.channels.calls_processed(),
        }
    }
}
