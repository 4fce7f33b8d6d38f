//! PostgreSQL COPY text format: the escaping of one value (fields are separated by tabs and
//! rows end with a newline), used by the initial copy to feed `COPY ... FROM` inside the
//! backend; the copy assembles each row straight into its chunk.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_specials_and_nulls() {
        let mut out = Vec::new();
        for (i, v) in [Some("a\tb"), None, Some("c\\d\ne\r"), Some("\\N")].into_iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            push_field(&mut out, v);
        }
        out.push(b'\n');
        assert_eq!(out, b"a\\tb\t\\N\tc\\\\d\\ne\\r\t\\\\N\n".to_vec());
    }
}
