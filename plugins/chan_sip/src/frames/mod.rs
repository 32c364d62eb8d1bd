//! The frame path (issue #14): a SIP leg's media as frames to and from the
//! core, for what the native relay cannot do — a conference, a bridge to
//! another technology. See docs/plans/conference.md.

pub mod jitter;
pub mod rtp;
