//! XA transactions (two-phase commit) as the binlog shows them. MariaDB 10.5+ and MySQL 5.7+
//! write an XA transaction's rows when it is prepared, in an event group that begins with
//! `XA START xid` and ends with an XA_PREPARE_LOG_EVENT naming the xid; its `XA COMMIT xid` or
//! `XA ROLLBACK xid` comes later, after other transactions, as an event group of its own
//! holding only that statement. This module reads the xid of both, and gives the one text
//! form it is stored and shown under: the servers' own (`XA RECOVER FORMAT='SQL'`, and what
//! they write into the binlog), `X'gtrid',X'bqual',formatID` with the parts in hex.

use std::fmt;

/// An XA transaction identifier: format id, global transaction id, branch qualifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Xid {
    /// The servers keep it in 32 bits (a negative id given in SQL wraps, in both sources).
    pub format_id: u32,
    pub gtrid: Vec<u8>,
    pub bqual: Vec<u8>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X'{}',X'{}',{}", hex(&self.gtrid), hex(&self.bqual), self.format_id)
    }
}

/// What an XA event group does to its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XaPhase {
    /// XA PREPARE: its rows, kept from replay until the outcome.
    Prepare,
    /// XA COMMIT of a prepared transaction: its rows become visible here.
    Commit,
    /// XA ROLLBACK of a prepared transaction: its rows are dropped.
    Rollback,
}

/// An XA event group's xid and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XaEvent {
    pub xid: Xid,
    pub phase: XaPhase,
}

/// An XA_PREPARE_LOG_EVENT's payload: one_phase (1 byte), format id, gtrid length and bqual
/// length (4 bytes LE each), then gtrid and bqual. Returns whether it is a one-phase commit
/// (`XA COMMIT ... ONE PHASE`: an ordinary commit) and the xid.
pub fn decode_prepare_event(data: &[u8]) -> Option<(bool, Xid)> {
    let u32_at = |at: usize| data.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let one_phase = *data.first()? != 0;
    let format_id = u32_at(1)?;
    let (g, b) = (u32_at(5)? as usize, u32_at(9)? as usize);
    // MAXGTRIDSIZE and MAXBQUALSIZE are 64 in both servers; the xid ends the event (a
    // checksum may follow)
    if g > 64 || b > 64 || (data.len() != 13 + g + b && data.len() != 17 + g + b) {
        return None;
    }
    let gtrid = data.get(13..13 + g)?.to_vec();
    let bqual = data.get(13 + g..13 + g + b)?.to_vec();
    Some((one_phase, Xid { format_id, gtrid, bqual }))
}

/// The XA statement `q` starts with (`XA START`/`BEGIN`, `XA END`, `XA PREPARE`, `XA COMMIT`,
/// `XA ROLLBACK`, any case) and the xid it names; `None` for other statements or an xid that
/// does not parse.
pub fn statement_xid(q: &str) -> Option<(String, Xid)> {
    let q = q.trim_start();
    let rest = strip_word(q, "XA")?;
    let verb_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
    let verb = rest[..verb_len].to_ascii_uppercase();
    let (xid, _) = parse_xid(&rest[verb_len..])?;
    Some((verb, xid))
}

fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let head = s.get(..word.len())?;
    let tail = &s[word.len()..];
    (head.eq_ignore_ascii_case(word) && tail.starts_with(char::is_whitespace)).then(|| tail.trim_start())
}

/// `gtrid [, bqual [, formatID]]` at the start of `s`, in any form SQL takes a string here
/// (`'text'`, `"text"`, `X'hex'`, `0xhex`, `B'bits'`, `0bbits`); the format id in decimal or
/// `0x` hex (default 1). Returns the xid and what follows it (`ONE PHASE`, `SUSPEND`, ...).
pub fn parse_xid(s: &str) -> Option<(Xid, &str)> {
    let (gtrid, mut rest) = string_literal(s.trim_start())?;
    let mut bqual = Vec::new();
    let mut format_id = 1u32;
    if let Some(r) = rest.trim_start().strip_prefix(',') {
        let (b, r) = string_literal(r.trim_start())?;
        bqual = b;
        rest = r;
        if let Some(r) = rest.trim_start().strip_prefix(',') {
            let (f, r) = number(r.trim_start())?;
            format_id = f;
            rest = r;
        }
    }
    Some((Xid { format_id, gtrid, bqual }, rest))
}

/// A string literal's bytes and what follows it.
fn string_literal(s: &str) -> Option<(Vec<u8>, &str)> {
    let b = s.as_bytes();
    match b.first()? {
        b'\'' | b'"' => quoted(s),
        b'x' | b'X' if b.get(1) == Some(&b'\'') => {
            let end = s[2..].find('\'')? + 2;
            Some((from_hex(&s[2..end])?, &s[end + 1..]))
        }
        b'b' | b'B' if b.get(1) == Some(&b'\'') => {
            let end = s[2..].find('\'')? + 2;
            Some((from_bits(&s[2..end])?, &s[end + 1..]))
        }
        b'0' if matches!(b.get(1), Some(b'x' | b'X' | b'b' | b'B')) => {
            let end = s[2..].find(|c: char| !c.is_ascii_alphanumeric()).map_or(s.len(), |e| e + 2);
            let digits = &s[2..end];
            let bytes = if b[1].eq_ignore_ascii_case(&b'x') { from_hex(digits)? } else { from_bits(digits)? };
            Some((bytes, &s[end..]))
        }
        _ => None,
    }
}

/// A quoted string (`'...'` or `"..."`): a doubled quote or a backslash escape inside.
fn quoted(s: &str) -> Option<(Vec<u8>, &str)> {
    let quote = s.as_bytes()[0];
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            c if c == quote && b.get(i + 1) == Some(&quote) => {
                out.push(quote);
                i += 2;
            }
            c if c == quote => return Some((out, &s[i + 1..])),
            b'\\' if i + 1 < b.len() => {
                out.push(match b[i + 1] {
                    b'0' => 0,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 8,
                    b'Z' => 26,
                    c => c,
                });
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

fn from_hex(digits: &str) -> Option<Vec<u8>> {
    // an odd number of digits has a leading zero implied, as in SQL
    let padded = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits.to_string() };
    (0..padded.len()).step_by(2).map(|i| u8::from_str_radix(padded.get(i..i + 2)?, 16).ok()).collect()
}

fn from_bits(digits: &str) -> Option<Vec<u8>> {
    if digits.is_empty() || !digits.bytes().all(|c| c == b'0' || c == b'1') {
        return digits.is_empty().then(Vec::new);
    }
    let pad = (8 - digits.len() % 8) % 8;
    let padded = format!("{}{digits}", "0".repeat(pad));
    (0..padded.len()).step_by(8).map(|i| u8::from_str_radix(&padded[i..i + 8], 2).ok()).collect()
}

/// A format id: decimal (a negative one wraps to 32 bits, as the servers keep it) or `0x` hex.
fn number(s: &str) -> Option<(u32, &str)> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        let end = h.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(h.len());
        return Some((u32::from_str_radix(&h[..end], 16).ok()?, &h[end..]));
    }
    let neg = s.starts_with('-');
    let digits = if neg { &s[1..] } else { s };
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    let v: i64 = digits[..end].parse().ok()?;
    let v = if neg { -v } else { v };
    Some((v as u32, &digits[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xid(g: &str, b: &str, f: u32) -> Xid {
        Xid { format_id: f, gtrid: g.as_bytes().to_vec(), bqual: b.as_bytes().to_vec() }
    }

    #[test]
    fn the_text_form_is_the_servers_own() {
        assert_eq!(xid("ab", "", 1).to_string(), "X'6162',X'',1");
        assert_eq!(xid("1", "b", 7).to_string(), "X'31',X'62',7");
    }

    #[test]
    fn statements_name_their_xid_in_every_sql_form() {
        // as the servers write XA COMMIT / XA ROLLBACK into the binlog
        assert_eq!(statement_xid("XA COMMIT X'31',X'',1"), Some(("COMMIT".into(), xid("1", "", 1))));
        assert_eq!(statement_xid("xa  rollback x'6162',X'63',0x10"), Some(("ROLLBACK".into(), xid("ab", "c", 16))));
        // as a user writes them
        assert_eq!(statement_xid("XA START 'one'"), Some(("START".into(), xid("one", "", 1))));
        assert_eq!(statement_xid("XA BEGIN \"q\"\"x\", 'b\\'c', 42"), Some(("BEGIN".into(), xid("q\"x", "b'c", 42))));
        assert_eq!(statement_xid("XA COMMIT 'it''s' ONE PHASE"), Some(("COMMIT".into(), xid("it's", "", 1))));
        assert_eq!(
            statement_xid("XA END 0x414, b'01000010', -1"),
            Some(("END".into(), {
                let mut x = xid("", "B", u32::MAX);
                x.gtrid = vec![0x04, 0x14];
                x
            }))
        );
        assert_eq!(statement_xid("XA COMMIT X'3',X'',1").map(|x| x.1.gtrid), Some(vec![3]));
        // not XA, or no xid
        assert_eq!(statement_xid("XAX COMMIT 'a'"), None);
        assert_eq!(statement_xid("XA RECOVER"), None);
        assert_eq!(statement_xid("XA COMMIT 'unterminated"), None);
        assert_eq!(statement_xid("XA COMMIT X'zz'"), None);
        assert_eq!(statement_xid("COMMIT"), None);
    }

    #[test]
    fn prepare_event_payloads() {
        let mut data = vec![0u8];
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(&2u32.to_le_bytes());
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(b"abc");
        assert_eq!(decode_prepare_event(&data), Some((false, xid("ab", "c", 1))));
        // a checksum after it is ignored
        let mut with_crc = data.clone();
        with_crc.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(decode_prepare_event(&with_crc), Some((false, xid("ab", "c", 1))));
        data[0] = 1;
        assert_eq!(decode_prepare_event(&data).map(|d| d.0), Some(true));
        assert_eq!(decode_prepare_event(&data[..14]), None, "truncated");
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(decode_prepare_event(&longer), None, "not what the lengths say");
        let mut huge = data.clone();
        huge[5] = 200;
        assert_eq!(decode_prepare_event(&huge), None);
    }
}
