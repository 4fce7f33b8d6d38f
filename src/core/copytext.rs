//! PostgreSQL COPY text format: escaping of one value and assembling of one row line,
//! used by the initial copy to feed `COPY ... FROM` inside the backend.

/// Appends one field (already in the column's text input form) escaped for COPY text format.
pub fn push_field(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.extend_from_slice(b"\\N"),
        Some(s) => push_escaped(out, s.as_bytes()),
    }
}

/// Appends bytes escaped for COPY text format: runs without special bytes are copied whole.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len());
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        out.extend_from_slice(esc);
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
}

/// Appends a whole row: fields separated by tabs, ended by a newline.
pub fn push_row<S: AsRef<str>>(out: &mut Vec<u8>, row: &[Option<S>]) {
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        push_field(out, v.as_ref().map(|s| s.as_ref()));
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_specials_and_nulls() {
        let mut out = Vec::new();
        push_row(&mut out, &[Some("a\tb"), None, Some("c\\d\ne\r"), Some("\\N")]);
        assert_eq!(out, b"a\\tb\t\\N\tc\\\\d\\ne\\r\t\\\\N\n".to_vec());
    }
}
