//! MySQL's binary JSON (row events) to the JSON text the initial copy reads, and partial JSON
//! updates (PARTIAL_UPDATE_ROWS_EVENT) applied to a before image.
//!
//! The copy reads a JSON column as MySQL prints it and PostgreSQL parses that into jsonb; the
//! binlog path must give the same jsonb. jsonb ignores key order and white space, so what
//! matters is each scalar: numbers keep their digits (a DECIMAL inside JSON is a number with
//! its scale, `9.00`, as MySQL prints it, not a string), doubles print as the shortest
//! round-trip form, and MySQL's opaque scalars print as MySQL prints them: DATE
//! `"2012-03-18"`, TIME `"87:31:46.654321"`, DATETIME/TIMESTAMP with six fractional digits,
//! any other opaque value (a BLOB or BIT inside JSON) as `"base64:type<n>:<data>"`.
//!
//! A JSON diff names its target with a MySQL JSON path (`$`, `.key`, `."quoted key"`, `[n]`)
//! and says REPLACE, INSERT or REMOVE; a diff that does not fit the before image is an error
//! (the row goes to `discarded_rows`), never a guess.

use mysql::binlog::jsonb::{self, JsonContainer, JsonDom, JsonNumber, JsonScalar};
use mysql::binlog::jsondiff::{JsonDiff, JsonDiffOperation};
use std::collections::BTreeMap;

/// A JSON document as PostgreSQL will read it; numbers keep their exact text.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// The JSON text (compact; jsonb does not keep white space).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_string(out, k);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    // serde_json's escaping of a &str cannot fail
    out.push_str(&serde_json::Value::String(s.to_string()).to_string());
}

/// PostgreSQL's jsonb refuses the NUL character (`\u0000`) in strings and keys.
fn check_text(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err("JSON string contains a NUL character (\\u0000), which PostgreSQL's jsonb cannot store".into());
    }
    Ok(())
}

/// MySQL's binary JSON as a document.
pub fn from_jsonb(value: jsonb::Value<'_>) -> Result<Json, String> {
    let dom = value.parse().map_err(|e| format!("undecodable binary JSON: {e}"))?;
    from_dom(dom)
}

fn from_dom(dom: JsonDom) -> Result<Json, String> {
    Ok(match dom {
        JsonDom::Container(JsonContainer::Array(items)) => {
            Json::Array(items.into_iter().map(from_dom).collect::<Result<_, _>>()?)
        }
        JsonDom::Container(JsonContainer::Object(members)) => {
            let mut out = BTreeMap::new();
            for (k, v) in members {
                check_text(&k)?;
                out.insert(k, from_dom(v)?);
            }
            Json::Object(out)
        }
        JsonDom::Scalar(JsonScalar::Null) => Json::Null,
        JsonDom::Scalar(JsonScalar::Boolean(b)) => Json::Bool(b),
        JsonDom::Scalar(JsonScalar::String(s)) => {
            check_text(&s)?;
            Json::String(s)
        }
        JsonDom::Scalar(JsonScalar::Number(n)) => Json::Number(match n {
            JsonNumber::Int(i) => i.to_string(),
            JsonNumber::Uint(u) => u.to_string(),
            JsonNumber::Decimal(d) => d.to_string(),
            JsonNumber::Double(f) => match serde_json::Number::from_f64(f) {
                Some(n) => n.to_string(),
                None => return Err(format!("JSON number {f} has no JSON text form")),
            },
        }),
        // DATE, TIME, DATETIME: the driver prints them as MySQL does, as strings; other
        // opaque values as "base64:type<n>:<data>"
        scalar @ JsonDom::Scalar(JsonScalar::DateTime(_) | JsonScalar::Opaque(_)) => {
            match serde_json::Value::from(scalar) {
                serde_json::Value::String(s) => Json::String(s),
                other => return Err(format!("unexpected JSON opaque value {other}")),
            }
        }
    })
}

/// The JSON text of a binary JSON value.
pub fn jsonb_text(value: &jsonb::Value<'_>) -> Result<String, String> {
    from_jsonb(value.clone()).map(|j| j.to_text())
}

/// One step of a MySQL JSON path.
#[derive(Debug, Clone, PartialEq)]
enum Leg {
    Key(String),
    Index(usize),
}

/// Parses a JSON diff path: `$` followed by `.key`, `."quoted key"` or `[n]` legs.
fn parse_path(path: &str) -> Result<Vec<Leg>, String> {
    let bad = |why: &str| format!("JSON diff path {path:?}: {why}");
    let rest = path.strip_prefix('$').ok_or_else(|| bad("does not start with $"))?;
    let mut legs = Vec::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' => {}
            '.' => {
                if let Some(&(q, '"')) = chars.peek() {
                    // a quoted key: a JSON string
                    let tail = &rest[q..];
                    let mut de = serde_json::Deserializer::from_str(tail).into_iter::<String>();
                    let key = match de.next() {
                        Some(Ok(k)) => k,
                        _ => return Err(bad("unterminated quoted key")),
                    };
                    let used = de.byte_offset();
                    legs.push(Leg::Key(key));
                    while chars.peek().is_some_and(|&(j, _)| j < q + used) {
                        chars.next();
                    }
                } else {
                    let start = i + 1;
                    let mut end = rest.len();
                    while let Some(&(j, c)) = chars.peek() {
                        if c == '.' || c == '[' {
                            end = j;
                            break;
                        }
                        chars.next();
                    }
                    let key = &rest[start..end];
                    if key.is_empty() || key == "*" {
                        return Err(bad("empty or wildcard key"));
                    }
                    legs.push(Leg::Key(key.to_string()));
                }
            }
            '[' => {
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some((_, ']')) => break,
                        Some((_, d)) if d.is_ascii_digit() => digits.push(d),
                        Some((_, ' ')) => {}
                        _ => return Err(bad("bad array index")),
                    }
                }
                legs.push(Leg::Index(digits.parse().map_err(|_| bad("bad array index"))?));
            }
            _ => return Err(bad("unexpected character")),
        }
    }
    Ok(legs)
}

/// The value at `legs` below `doc`.
fn seek_mut<'a>(doc: &'a mut Json, legs: &[Leg]) -> Option<&'a mut Json> {
    let mut cur = doc;
    for leg in legs {
        cur = match (cur, leg) {
            (Json::Object(m), Leg::Key(k)) => m.get_mut(k)?,
            (Json::Array(a), Leg::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Applies one JSON diff to `doc` as MySQL's replica does.
pub fn apply_diff(doc: &mut Json, diff: &JsonDiff<'_>) -> Result<(), String> {
    let path = String::from_utf8(diff.path().to_vec()).map_err(|_| "JSON diff path is not UTF-8".to_string())?;
    let legs = parse_path(&path)?;
    let op = diff.operation();
    let value = match (op, diff.value()) {
        (JsonDiffOperation::REMOVE, _) => None,
        (_, Some(v)) => Some(from_jsonb(v.clone())?),
        (_, None) => return Err(format!("JSON diff {op:?} at {path} without a value")),
    };
    let missing = || format!("JSON diff {op:?} at {path} does not fit the before image");
    let Some((last, parent_legs)) = legs.split_last() else {
        // the whole document
        return match (op, value) {
            (JsonDiffOperation::REPLACE, Some(v)) => {
                *doc = v;
                Ok(())
            }
            _ => Err(missing()),
        };
    };
    let parent = seek_mut(doc, parent_legs).ok_or_else(missing)?;
    match (op, parent, last, value) {
        (JsonDiffOperation::REPLACE, parent, _, Some(v)) => {
            let target = seek_mut(parent, std::slice::from_ref(last)).ok_or_else(missing)?;
            *target = v;
        }
        (JsonDiffOperation::INSERT, Json::Array(a), Leg::Index(i), Some(v)) => {
            let at = (*i).min(a.len());
            a.insert(at, v);
        }
        (JsonDiffOperation::INSERT, Json::Object(m), Leg::Key(k), Some(v)) => {
            if m.contains_key(k) {
                return Err(missing());
            }
            m.insert(k.clone(), v);
        }
        (JsonDiffOperation::REMOVE, Json::Array(a), Leg::Index(i), None) if *i < a.len() => {
            a.remove(*i);
        }
        (JsonDiffOperation::REMOVE, Json::Object(m), Leg::Key(k), None) => {
            m.remove(k).ok_or_else(missing)?;
        }
        _ => return Err(missing()),
    }
    Ok(())
}

/// The after image of a JSON column from its before image and the diffs of a partial update.
pub fn apply_diffs(before: &jsonb::Value<'_>, diffs: &[JsonDiff<'_>]) -> Result<String, String> {
    let mut doc = from_jsonb(before.clone())?;
    for d in diffs {
        apply_diff(&mut doc, d)?;
    }
    Ok(doc.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("$").unwrap(), vec![]);
        assert_eq!(
            parse_path("$.a[2].\"b c\"").unwrap(),
            vec![Leg::Key("a".into()), Leg::Index(2), Leg::Key("b c".into())]
        );
        assert_eq!(parse_path("$.\"q\\\"x\".y").unwrap(), vec![Leg::Key("q\"x".into()), Leg::Key("y".into())]);
        assert!(parse_path("a").is_err());
        assert!(parse_path("$[x]").is_err());
        assert!(parse_path("$.\"open").is_err());
        assert!(parse_path("$.*").is_err());
    }

    #[test]
    fn documents_render_as_json_text() {
        let mut m = BTreeMap::new();
        m.insert("d".to_string(), Json::Number("9.00".into()));
        m.insert("s".to_string(), Json::String("a\"b\n".into()));
        m.insert("a".to_string(), Json::Array(vec![Json::Null, Json::Bool(true)]));
        assert_eq!(Json::Object(m).to_text(), r#"{"a": [null, true], "d": 9.00, "s": "a\"b\n"}"#);
        assert!(check_text("a\0").is_err());
    }
}
