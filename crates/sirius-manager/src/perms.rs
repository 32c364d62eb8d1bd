//! Asterisk's permission classes (`manager.c` `perms[]`): one bit each, the
//! same names in manager.toml's `read`/`write` lists, in an `Events`
//! action's mask and in every event's `Privilege:` line.

/// A set of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms(pub u32);

/// Names and bits in Asterisk's order (`EVENT_FLAG_*`, manager.h): the
/// order `Privilege:` lines list them in.
const CLASSES: &[(&str, u32)] = &[
    ("system", 1 << 0),
    ("call", 1 << 1),
    ("log", 1 << 2),
    ("verbose", 1 << 3),
    ("command", 1 << 4),
    ("agent", 1 << 5),
    ("user", 1 << 6),
    ("config", 1 << 7),
    ("dtmf", 1 << 8),
    ("reporting", 1 << 9),
    ("cdr", 1 << 10),
    ("dialplan", 1 << 11),
    ("originate", 1 << 12),
    ("agi", 1 << 13),
    ("cc", 1 << 15),
    ("aoc", 1 << 16),
    ("test", 1 << 17),
    ("security", 1 << 18),
    ("message", 1 << 30),
];

impl Perms {
    /// No class.
    pub const NONE: Perms = Perms(0);
    /// `system`.
    pub const SYSTEM: Perms = Perms(1 << 0);
    /// `call`.
    pub const CALL: Perms = Perms(1 << 1);
    /// `command`.
    pub const COMMAND: Perms = Perms(1 << 4);
    /// `user`.
    pub const USER: Perms = Perms(1 << 6);
    /// `config`.
    pub const CONFIG: Perms = Perms(1 << 7);
    /// `reporting`.
    pub const REPORTING: Perms = Perms(1 << 9);
    /// `originate`.
    pub const ORIGINATE: Perms = Perms(1 << 12);
    /// `all` (Asterisk's `INT_MAX`).
    pub const ALL: Perms = Perms(i32::MAX as u32);

    /// Whether the two sets share a class.
    pub fn intersects(self, other: Perms) -> bool {
        self.0 & other.0 != 0
    }

    /// Both sets' classes.
    pub fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }

    /// The classes in both.
    pub fn and(self, other: Perms) -> Perms {
        Perms(self.0 & other.0)
    }

    /// A class list as manager.conf writes it (`system,call,log`), `all`
    /// or `none`; unknown names are ignored, as Asterisk's `get_perm` does.
    pub fn parse_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Perms {
        let mut bits = 0;
        for name in names.into_iter().flat_map(|n| n.split(',')).map(str::trim) {
            if name.eq_ignore_ascii_case("all") {
                bits |= Perms::ALL.0;
            } else if let Some((_, b)) = CLASSES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                bits |= b;
            }
        }
        Perms(bits)
    }

    /// An `Events` action's mask (Asterisk's `strings_to_mask`): a number
    /// is itself, `on`/`yes`/`true` every class, `off`/`no`/`false` none,
    /// else a class list. `None` for an empty mask.
    pub fn from_mask(mask: &str) -> Option<Perms> {
        let mask = mask.trim();
        if mask.is_empty() {
            return None;
        }
        if mask.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Perms(mask.parse::<u32>().unwrap_or(u32::MAX)));
        }
        let lower = mask.to_ascii_lowercase();
        match lower.as_str() {
            "off" | "no" | "false" | "n" | "f" | "0" => Some(Perms::NONE),
            "on" | "yes" | "true" | "y" | "t" | "1" => Some(Perms::ALL),
            _ => Some(Perms::parse_list([mask])),
        }
    }

    /// `call,all`: an event's `Privilege:` (Asterisk's `authority_to_str`,
    /// which names every class the set touches, `all` included).
    pub fn privilege(self) -> String {
        let mut names: Vec<&str> = CLASSES
            .iter()
            .filter(|(_, b)| self.0 & b != 0)
            .map(|(n, _)| *n)
            .collect();
        if self.0 & Perms::ALL.0 != 0 {
            names.push("all");
        }
        if names.is_empty() {
            return "<none>".into();
        }
        names.join(",")
    }

    /// The classes a user holds whole (`manager show user`: Asterisk's
    /// `user_authority_to_str`).
    pub fn user_list(self) -> String {
        let mut names: Vec<&str> = CLASSES
            .iter()
            .filter(|(_, b)| self.0 & b == *b)
            .map(|(n, _)| *n)
            .collect();
        if self == Perms::ALL {
            names.push("all");
        }
        if names.is_empty() {
            return "<none>".into();
        }
        names.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_read_and_print_as_asterisk_does() {
        let p = Perms::parse_list(["system,call", "originate", "bogus"]);
        assert_eq!(p, Perms(1 | 2 | 1 << 12));
        assert_eq!(Perms::CALL.privilege(), "call,all");
        assert_eq!(p.user_list(), "system,call,originate");
        assert_eq!(Perms::parse_list(["all"]), Perms::ALL);
        assert_eq!(Perms::from_mask("off"), Some(Perms::NONE));
        assert_eq!(Perms::from_mask("on"), Some(Perms::ALL));
        assert_eq!(Perms::from_mask("3"), Some(Perms(3)));
        assert_eq!(Perms::from_mask("call,system"), Some(Perms(3)));
        assert_eq!(Perms::from_mask(""), None);
        assert_eq!(Perms::NONE.privilege(), "<none>");
    }
}
