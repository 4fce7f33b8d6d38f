//! GTID positions, the server-independent alternative to file:offset coordinates.
//!
//! - MariaDB: a list of `domain-server-seq`, one per replication domain (`@@gtid_binlog_pos`,
//!   what `@slave_connect_state` takes). A new transaction replaces its domain's entry.
//! - MySQL: a GTID set, `uuid[:tag]:interval[:interval...]` comma separated
//!   (`@@gtid_executed`, what COM_BINLOG_DUMP_GTID takes). A new transaction adds its number to
//!   its uuid's intervals.
//!
//! The reader keeps the state of the source after each transaction it hands over; the state is
//! stored with the binlog position (docs/internals.md, contract 1) and, with `gtid_enable`, is where the reader
//! reconnects, so that a replica can follow a source that moved to another server.

use crate::core::error::{CoreError, CoreResult};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidState {
    /// domain -> (server_id, sequence number) of the last transaction of that domain.
    MariaDb(BTreeMap<u32, (u32, u64)>),
    /// `uuid` or `uuid:tag` (lower case) -> sorted, disjoint, non-adjacent inclusive intervals.
    MySql(BTreeMap<String, Vec<(u64, u64)>>),
}

/// One transaction's GTID, as the binlog's GTID event gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gtid {
    MariaDb {
        domain: u32,
        server: u32,
        seq: u64,
    },
    /// `sid` is the uuid, with `:tag` for MySQL 8.4 tagged GTIDs.
    MySql {
        sid: String,
        gno: u64,
    },
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::MariaDb { domain, server, seq } => write!(f, "{domain}-{server}-{seq}"),
            Gtid::MySql { sid, gno } => write!(f, "{sid}:{gno}"),
        }
    }
}

fn bad(text: &str, why: &str) -> CoreError {
    CoreError::invalid_parameter(format!("GTID \"{text}\": {why}"))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower-cased.
fn parse_uuid(s: &str) -> Option<String> {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    (groups.len() == 5
        && groups.iter().zip(lens).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit())))
    .then(|| s.to_ascii_lowercase())
}

/// The text form of a 16-byte uuid.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn is_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl GtidState {
    /// Whether `text` is written as a GTID position (MariaDB or MySQL) rather than `file:offset`.
    pub fn looks_like_gtid(text: &str) -> bool {
        GtidState::parse(text).is_ok()
    }

    /// Parses a MariaDB GTID list or a MySQL GTID set; the form says which.
    pub fn parse(text: &str) -> CoreResult<GtidState> {
        let t = text.trim();
        if t.is_empty() {
            return Err(bad(text, "empty"));
        }
        let parts: Vec<&str> = t.split(',').map(|p| p.trim()).filter(|p| !p.is_empty()).collect();
        if parts.iter().all(|p| p.split('-').count() == 3 && !p.contains(':')) {
            let mut m = BTreeMap::new();
            for p in parts {
                let n: Vec<&str> = p.split('-').collect();
                let (Ok(d), Ok(s), Ok(q)) = (n[0].parse::<u32>(), n[1].parse::<u32>(), n[2].parse::<u64>()) else {
                    return Err(bad(text, &format!("\"{p}\" is not domain-server-sequence")));
                };
                if m.insert(d, (s, q)).is_some() {
                    return Err(bad(text, &format!("domain {d} appears twice")));
                }
            }
            return Ok(GtidState::MariaDb(m));
        }
        let mut m: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for p in parts {
            let mut fields = p.split(':');
            let uuid = fields
                .next()
                .and_then(parse_uuid)
                .ok_or_else(|| bad(text, &format!("\"{p}\" is neither domain-server-sequence nor uuid:interval")))?;
            let mut sid = uuid.clone();
            let mut any = false;
            for f in fields {
                if is_tag(f) {
                    sid = format!("{uuid}:{f}");
                    continue;
                }
                let (a, b) = match f.split_once('-') {
                    Some((a, b)) => (a.parse::<u64>(), b.parse::<u64>()),
                    None => (f.parse::<u64>(), f.parse::<u64>()),
                };
                let (Ok(a), Ok(b)) = (a, b) else {
                    return Err(bad(text, &format!("\"{f}\" in \"{p}\" is not an interval like 1-100")));
                };
                if a == 0 || b < a {
                    return Err(bad(text, &format!("interval \"{f}\" in \"{p}\" is empty or starts at 0")));
                }
                add_interval(m.entry(sid.clone()).or_default(), a, b);
                any = true;
            }
            if !any {
                return Err(bad(text, &format!("\"{p}\" has no interval")));
            }
        }
        Ok(GtidState::MySql(m))
    }

    /// An empty state of the flavour that `gtid` belongs to.
    pub fn empty_like(gtid: &Gtid) -> GtidState {
        match gtid {
            Gtid::MariaDb { .. } => GtidState::MariaDb(BTreeMap::new()),
            Gtid::MySql { .. } => GtidState::MySql(BTreeMap::new()),
        }
    }

    /// The state after the transaction `gtid`. A GTID of the other flavour is refused.
    pub fn apply(&mut self, gtid: &Gtid) -> CoreResult<()> {
        match (self, gtid) {
            (GtidState::MariaDb(m), Gtid::MariaDb { domain, server, seq }) => {
                m.insert(*domain, (*server, *seq));
                Ok(())
            }
            (GtidState::MySql(m), Gtid::MySql { sid, gno }) => {
                add_interval(m.entry(sid.clone()).or_default(), *gno, *gno);
                Ok(())
            }
            (s, g) => Err(CoreError::binlog(format!("GTID {g} does not fit the recorded GTID position {s}"))),
        }
    }

    /// Whether every transaction of `other` is in this position (this one is at or past it).
    /// MariaDB: each domain of `other` is here with at least its sequence number.
    pub fn contains(&self, other: &GtidState) -> bool {
        match (self, other) {
            (GtidState::MariaDb(a), GtidState::MariaDb(b)) => {
                b.iter().all(|(d, (_, seq))| a.get(d).is_some_and(|(_, have)| have >= seq))
            }
            (GtidState::MySql(a), GtidState::MySql(b)) => b.iter().all(|(sid, want)| {
                let have = a.get(sid).map(Vec::as_slice).unwrap_or(&[]);
                want.iter().all(|(x, y)| have.iter().any(|(p, q)| p <= x && y <= q))
            }),
            _ => false,
        }
    }

    pub fn is_mariadb(&self) -> bool {
        matches!(self, GtidState::MariaDb(_))
    }

    /// The MySQL set as the `uuid[:tag]:a-b:c-d` blocks COM_BINLOG_DUMP_GTID takes, one per sid.
    pub fn mysql_blocks(&self) -> Vec<String> {
        match self {
            GtidState::MariaDb(_) => vec![],
            GtidState::MySql(m) => m.iter().map(|(sid, iv)| mysql_block(sid, iv)).collect(),
        }
    }
}

fn mysql_block(sid: &str, iv: &[(u64, u64)]) -> String {
    let mut s = sid.to_string();
    for (a, b) in iv {
        if a == b {
            s.push_str(&format!(":{a}"));
        } else {
            s.push_str(&format!(":{a}-{b}"));
        }
    }
    s
}

/// Adds [a, b] to sorted disjoint intervals, merging overlapping and adjacent ones.
fn add_interval(iv: &mut Vec<(u64, u64)>, a: u64, b: u64) {
    let (mut lo, mut hi) = (a, b);
    let mut out = Vec::with_capacity(iv.len() + 1);
    let mut placed = false;
    for &(x, y) in iv.iter() {
        if y.saturating_add(1) < lo {
            out.push((x, y));
        } else if hi.saturating_add(1) < x {
            if !placed {
                out.push((lo, hi));
                placed = true;
            }
            out.push((x, y));
        } else {
            lo = lo.min(x);
            hi = hi.max(y);
        }
    }
    if !placed {
        out.push((lo, hi));
    }
    *iv = out;
}

impl fmt::Display for GtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidState::MariaDb(m) => {
                let parts: Vec<String> = m.iter().map(|(d, (s, q))| format!("{d}-{s}-{q}")).collect();
                write!(f, "{}", parts.join(","))
            }
            GtidState::MySql(_) => write!(f, "{}", self.mysql_blocks().join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4f22fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn mariadb_list_parses_applies_and_prints() {
        let mut s = GtidState::parse("0-1-100, 2-5-7").unwrap();
        assert!(s.is_mariadb());
        s.apply(&Gtid::MariaDb { domain: 0, server: 2, seq: 101 }).unwrap();
        s.apply(&Gtid::MariaDb { domain: 1, server: 1, seq: 1 }).unwrap();
        assert_eq!(s.to_string(), "0-2-101,1-1-1,2-5-7");
        assert!(GtidState::parse("0-1-x").is_err());
        assert!(GtidState::parse("0-1-1,0-2-2").is_err());
        assert!(GtidState::parse("").is_err());
        assert!(s.apply(&Gtid::MySql { sid: U1.into(), gno: 1 }).is_err());
    }

    #[test]
    fn mysql_set_merges_intervals() {
        let mut s = GtidState::parse(&format!("{U2}:1-5, {}:1-3:7", U1.to_uppercase())).unwrap();
        assert_eq!(s.to_string(), format!("{U1}:1-3:7,{U2}:1-5"));
        s.apply(&Gtid::MySql { sid: U1.into(), gno: 4 }).unwrap();
        assert_eq!(s.to_string(), format!("{U1}:1-4:7,{U2}:1-5"));
        s.apply(&Gtid::MySql { sid: U1.into(), gno: 6 }).unwrap();
        assert_eq!(s.to_string(), format!("{U1}:1-4:6-7,{U2}:1-5"));
        s.apply(&Gtid::MySql { sid: U1.into(), gno: 5 }).unwrap();
        s.apply(&Gtid::MySql { sid: U1.into(), gno: 2 }).unwrap();
        assert_eq!(s.to_string(), format!("{U1}:1-7,{U2}:1-5"));
        s.apply(&Gtid::MySql { sid: U1.into(), gno: 10 }).unwrap();
        s.apply(&Gtid::MySql { sid: format!("{U2}:blue"), gno: 1 }).unwrap();
        assert_eq!(s.to_string(), format!("{U1}:1-7:10,{U2}:1-5,{U2}:blue:1"));
        assert_eq!(GtidState::parse(&s.to_string()).unwrap(), s);
        assert_eq!(s.mysql_blocks().len(), 3);
    }

    #[test]
    fn containment() {
        let a = GtidState::parse("0-1-100,1-1-5").unwrap();
        assert!(a.contains(&GtidState::parse("0-2-99").unwrap()));
        assert!(a.contains(&GtidState::parse("0-1-100,1-3-5").unwrap()));
        assert!(!a.contains(&GtidState::parse("0-1-101").unwrap()));
        assert!(!a.contains(&GtidState::parse("2-1-1").unwrap()));
        let m = GtidState::parse(&format!("{U1}:1-10:20-30")).unwrap();
        assert!(m.contains(&GtidState::parse(&format!("{U1}:2-9:25")).unwrap()));
        assert!(!m.contains(&GtidState::parse(&format!("{U1}:9-20")).unwrap()));
        assert!(!m.contains(&GtidState::parse(&format!("{U2}:1")).unwrap()));
        assert!(!m.contains(&a));
    }

    #[test]
    fn tells_gtids_from_file_offsets() {
        assert!(GtidState::looks_like_gtid("0-1-42"));
        assert!(GtidState::looks_like_gtid(&format!("{U1}:1-42")));
        assert!(!GtidState::looks_like_gtid("mysql-bin.000003:1234"));
        assert!(!GtidState::looks_like_gtid("mariadb-bin.000001:4"));
        assert!(GtidState::parse(&format!("{U1}:0-3")).is_err());
        assert!(GtidState::parse(&format!("{U1}:5-3")).is_err());
        assert!(GtidState::parse(U1).is_err());
    }

    #[test]
    fn uuid_bytes_to_text() {
        let b: [u8; 16] =
            [0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62];
        assert_eq!(uuid_text(&b), U1);
    }
}
