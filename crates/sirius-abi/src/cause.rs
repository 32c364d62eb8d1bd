//! Q.850 hangup causes, the error currency of calls.
//!
//! A newtype over the number rather than an enum: a plugin built against an
//! older table must still be able to hand the core a cause it does not know
//! by name, and an enum with an unknown discriminant would be undefined
//! behaviour across the FFI boundary.

use abi_stable::StableAbi;
use std::fmt;

/// A Q.850 cause code, named as Asterisk names them (`AST_CAUSE_*`).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Cause(pub u32);

macro_rules! causes {
    ($( $konst:ident = $num:literal, $name:literal, $desc:literal; )*) => {
        impl Cause {
            $(
                #[doc = $desc]
                pub const $konst: Cause = Cause($num);
            )*

            /// Asterisk's name for the cause (`USER_BUSY`), as `${HANGUPCAUSE}` users know it.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $( $num => $name, )*
                    _ => "UNKNOWN",
                }
            }

            /// Human-readable description, as `ast_cause2str` gives it.
            pub fn description(self) -> &'static str {
                match self.0 {
                    $( $num => $desc, )*
                    _ => "Unknown",
                }
            }

            /// Looks a cause up by its Asterisk name (`"USER_BUSY"`), case-insensitively.
            pub fn from_name(name: &str) -> Option<Cause> {
                $( if name.eq_ignore_ascii_case($name) { return Some(Cause($num)); } )*
                None
            }
        }
    };
}

causes! {
    NOT_DEFINED = 0, "NOTDEFINED", "Not defined";
    UNALLOCATED = 1, "UNALLOCATED", "Unallocated (unassigned) number";
    NO_ROUTE_TRANSIT_NET = 2, "NO_ROUTE_TRANSIT_NET", "No route to specified transmit network";
    NO_ROUTE_DESTINATION = 3, "NO_ROUTE_DESTINATION", "No route to destination";
    MISDIALLED_TRUNK_PREFIX = 5, "MISDIALLED_TRUNK_PREFIX", "Misdialed trunk prefix";
    CHANNEL_UNACCEPTABLE = 6, "CHANNEL_UNACCEPTABLE", "Channel unacceptable";
    CALL_AWARDED_DELIVERED = 7, "CALL_AWARDED_DELIVERED", "Call awarded and being delivered in an established channel";
    PRE_EMPTED = 8, "PRE_EMPTED", "Pre-empted";
    NUMBER_PORTED_NOT_HERE = 14, "NUMBER_PORTED_NOT_HERE", "Number ported elsewhere";
    NORMAL_CLEARING = 16, "NORMAL_CLEARING", "Normal Clearing";
    USER_BUSY = 17, "USER_BUSY", "User busy";
    NO_USER_RESPONSE = 18, "NO_USER_RESPONSE", "No user responding";
    NO_ANSWER = 19, "NO_ANSWER", "User alerting, no answer";
    SUBSCRIBER_ABSENT = 20, "SUBSCRIBER_ABSENT", "Subscriber absent";
    CALL_REJECTED = 21, "CALL_REJECTED", "Call Rejected";
    NUMBER_CHANGED = 22, "NUMBER_CHANGED", "Number changed";
    REDIRECTED_TO_NEW_DESTINATION = 23, "REDIRECTED_TO_NEW_DESTINATION", "Redirected to new destination";
    ANSWERED_ELSEWHERE = 26, "ANSWERED_ELSEWHERE", "Answered elsewhere";
    DESTINATION_OUT_OF_ORDER = 27, "DESTINATION_OUT_OF_ORDER", "Destination out of order";
    INVALID_NUMBER_FORMAT = 28, "INVALID_NUMBER_FORMAT", "Invalid number format";
    FACILITY_REJECTED = 29, "FACILITY_REJECTED", "Facility rejected";
    RESPONSE_TO_STATUS_ENQUIRY = 30, "RESPONSE_TO_STATUS_ENQUIRY", "Response to STATus ENQuiry";
    NORMAL_UNSPECIFIED = 31, "NORMAL_UNSPECIFIED", "Normal, unspecified";
    NORMAL_CIRCUIT_CONGESTION = 34, "NORMAL_CIRCUIT_CONGESTION", "Circuit/channel congestion";
    NETWORK_OUT_OF_ORDER = 38, "NETWORK_OUT_OF_ORDER", "Network out of order";
    NORMAL_TEMPORARY_FAILURE = 41, "NORMAL_TEMPORARY_FAILURE", "Temporary failure";
    SWITCH_CONGESTION = 42, "SWITCH_CONGESTION", "Switching equipment congestion";
    ACCESS_INFO_DISCARDED = 43, "ACCESS_INFO_DISCARDED", "Access information discarded";
    REQUESTED_CHAN_UNAVAIL = 44, "REQUESTED_CHAN_UNAVAIL", "Requested channel not available";
    FACILITY_NOT_SUBSCRIBED = 50, "FACILITY_NOT_SUBSCRIBED", "Facility not subscribed";
    OUTGOING_CALL_BARRED = 52, "OUTGOING_CALL_BARRED", "Outgoing call barred";
    INCOMING_CALL_BARRED = 54, "INCOMING_CALL_BARRED", "Incoming call barred";
    BEARERCAPABILITY_NOTAUTH = 57, "BEARERCAPABILITY_NOTAUTH", "Bearer capability not authorized";
    BEARERCAPABILITY_NOTAVAIL = 58, "BEARERCAPABILITY_NOTAVAIL", "Bearer capability not available";
    BEARERCAPABILITY_NOTIMPL = 65, "BEARERCAPABILITY_NOTIMPL", "Bearer capability not implemented";
    CHAN_NOT_IMPLEMENTED = 66, "CHAN_NOT_IMPLEMENTED", "Channel not implemented";
    FACILITY_NOT_IMPLEMENTED = 69, "FACILITY_NOT_IMPLEMENTED", "Facility not implemented";
    INVALID_CALL_REFERENCE = 81, "INVALID_CALL_REFERENCE", "Invalid call reference value";
    INCOMPATIBLE_DESTINATION = 88, "INCOMPATIBLE_DESTINATION", "Incompatible destination";
    INVALID_MSG_UNSPECIFIED = 95, "INVALID_MSG_UNSPECIFIED", "Invalid message unspecified";
    MANDATORY_IE_MISSING = 96, "MANDATORY_IE_MISSING", "Mandatory information element is missing";
    MESSAGE_TYPE_NONEXIST = 97, "MESSAGE_TYPE_NONEXIST", "Message type nonexist.";
    WRONG_MESSAGE = 98, "WRONG_MESSAGE", "Wrong message";
    IE_NONEXIST = 99, "IE_NONEXIST", "Info. element nonexist or not implemented";
    INVALID_IE_CONTENTS = 100, "INVALID_IE_CONTENTS", "Invalid information element contents";
    WRONG_CALL_STATE = 101, "WRONG_CALL_STATE", "Message not compatible with call state";
    RECOVERY_ON_TIMER_EXPIRE = 102, "RECOVERY_ON_TIMER_EXPIRE", "Recover on timer expiry";
    MANDATORY_IE_LENGTH_ERROR = 103, "MANDATORY_IE_LENGTH_ERROR", "Mandatory IE length error";
    PROTOCOL_ERROR = 111, "PROTOCOL_ERROR", "Protocol error, unspecified";
    INTERWORKING = 127, "INTERWORKING", "Interworking, unspecified";
}

/// Asterisk's aliases (`AST_CAUSE_BUSY`, `AST_CAUSE_CONGESTION`, …): the same numbers
/// under the names dialplan writers and chan_sip use.
impl Cause {
    /// `AST_CAUSE_BUSY`.
    pub const BUSY: Cause = Cause::USER_BUSY;
    /// `AST_CAUSE_CONGESTION`.
    pub const CONGESTION: Cause = Cause::NORMAL_CIRCUIT_CONGESTION;
    /// `AST_CAUSE_FAILURE`: what a contained plugin panic is reported as.
    pub const FAILURE: Cause = Cause::NETWORK_OUT_OF_ORDER;
    /// `AST_CAUSE_NOANSWER`.
    pub const NOANSWER: Cause = Cause::NO_ANSWER;
    /// `AST_CAUSE_UNREGISTERED`: a dynamic peer with no registration.
    pub const UNREGISTERED: Cause = Cause::SUBSCRIBER_ABSENT;
    /// `AST_CAUSE_NOSUCHDRIVER`: no channel technology of that type.
    pub const NOSUCHDRIVER: Cause = Cause::CHAN_NOT_IMPLEMENTED;
    /// `AST_CAUSE_NORMAL`.
    pub const NORMAL: Cause = Cause::NORMAL_CLEARING;
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_asterisk() {
        assert_eq!(Cause::USER_BUSY.name(), "USER_BUSY");
        assert_eq!(Cause(58).name(), "BEARERCAPABILITY_NOTAVAIL");
        assert_eq!(Cause::CONGESTION.0, 34);
        assert_eq!(Cause::UNREGISTERED, Cause::SUBSCRIBER_ABSENT);
        assert_eq!(Cause::from_name("normal_clearing"), Some(Cause(16)));
        assert_eq!(Cause(250).name(), "UNKNOWN");
        assert_eq!(Cause(17).to_string(), "User busy (17)");
    }
}
