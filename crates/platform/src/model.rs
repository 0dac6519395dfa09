//! The platform's entities as plain data: users, app keys, things, properties,
//! remote interfaces and audit entries. The store reads and writes these; the
//! HTTP API serialises them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, the unit of every time the platform stores.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Raised when a string does not name a known variant.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {expected})")]
pub struct ParseEnumError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// The name used in the store, the API and the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s.eq_ignore_ascii_case($text) { return Ok(Self::$variant); })+
                Err(ParseEnumError {
                    what: $what,
                    value: s.to_owned(),
                    expected: concat!($($text, " "),+),
                })
            }
        }
    };
}

string_enum!(
    /// What a user may do.
    Role, "role", {
        /// Everything, including users, app keys and things.
        Administrator = "administrator",
        /// Read and write properties, call services, open sessions.
        Operator = "operator",
        /// Read only.
        Viewer = "viewer",
        /// A connection server (`tether-cxserver`): its app key opens
        /// upstream links that carry many edges; nothing else.
        ConnectionServer = "connection-server",
    }
);

string_enum!(
    /// The template a thing is built from.
    Template, "template", {
        /// A thing that an edge binds.
        RemoteThing = "RemoteThing",
        /// A remote thing with remote interfaces (tunnels).
        RemoteThingWithTunnels = "RemoteThingWithTunnels",
        /// An EMS acting as gateway; created ephemerally when a gateway binds.
        EmsGateway = "EMSGateway",
    }
);

string_enum!(
    /// The protocol spoken on a remote interface.
    Protocol, "protocol", {
        /// Secure shell.
        Ssh = "ssh",
        /// Virtual network computing.
        Vnc = "vnc",
        /// Any other TCP service.
        Tcp = "tcp",
    }
);

impl Role {
    /// Whether this role may write properties and call services.
    pub fn may_operate(self) -> bool {
        matches!(self, Role::Administrator | Role::Operator)
    }

    /// Whether this role may manage users, app keys and things.
    pub fn may_administer(self) -> bool {
        self == Role::Administrator
    }
}

/// A person or script that logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
}

/// An application key as stored (the key itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppKey {
    pub id: i64,
    pub name: String,
    pub user: String,
    pub expires_at: Option<i64>,
    /// Client addresses or CIDR blocks allowed to use the key; empty = any.
    pub allowed_addresses: Vec<String>,
    /// Thing-name patterns (`*` wildcard) the key may bind; empty = any.
    pub thing_patterns: Vec<String>,
    pub revoked: bool,
    pub created_at: i64,
}

/// What creating an app key needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAppKey {
    pub name: String,
    pub user: String,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub allowed_addresses: Vec<String>,
    #[serde(default)]
    pub thing_patterns: Vec<String>,
}

impl AppKey {
    /// Whether the key has expired at `now` (ms).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Whether a client at `addr` may use the key.
    pub fn allows_address(&self, addr: IpAddr) -> bool {
        self.allowed_addresses.is_empty()
            || self
                .allowed_addresses
                .iter()
                .any(|entry| Cidr::parse(entry).is_some_and(|c| c.contains(addr)))
    }

    /// Whether the key may bind the thing called `name`.
    pub fn may_bind(&self, name: &str) -> bool {
        self.thing_patterns.is_empty() || self.thing_patterns.iter().any(|p| glob_match(p, name))
    }
}

/// An address block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.trim().parse::<IpAddr>().ok()?,
                Some(p.trim().parse::<u8>().ok()?),
            ),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Matches `name` against `pattern`, where `*` matches any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A thing: something an edge binds and that has properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thing {
    pub id: i64,
    pub name: String,
    pub identifier: Option<String>,
    pub template: Template,
    pub description: String,
    pub is_connected: bool,
    pub last_connection: Option<i64>,
    /// Created by a gateway BIND; not listed as configured.
    pub ephemeral: bool,
    pub created_at: i64,
}

/// What creating a thing needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewThing {
    pub name: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default = "default_template")]
    pub template: Template,
    #[serde(default)]
    pub description: String,
}

fn default_template() -> Template {
    Template::RemoteThing
}

/// A property's last known value. `value` is the JSON form of the primitive
/// (§6.4 of the AlwaysOn spec) and `base_type` its upper-case type name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyValue {
    pub name: String,
    pub base_type: String,
    pub value: serde_json::Value,
    pub time: i64,
    pub quality: String,
}

/// A service on the edge reachable through a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteInterface {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub protocol: Protocol,
    #[serde(default)]
    pub description: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub time: i64,
    pub kind: String,
    pub actor: String,
    pub subject: String,
    pub detail: String,
    pub peer: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("Pump*", "Pump1"));
        assert!(glob_match("*SN*", "*SN0012"));
        assert!(!glob_match("Pump*", "Valve1"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.9.9".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }

    #[test]
    fn enums_parse_leniently() {
        assert_eq!(
            "Administrator".parse::<Role>().unwrap(),
            Role::Administrator
        );
        assert_eq!(
            "emsgateway".parse::<Template>().unwrap(),
            Template::EmsGateway
        );
        assert!("root".parse::<Role>().is_err());
        let cx = "connection-server".parse::<Role>().unwrap();
        assert_eq!(cx, Role::ConnectionServer);
        assert!(!cx.may_operate() && !cx.may_administer());
    }
}
