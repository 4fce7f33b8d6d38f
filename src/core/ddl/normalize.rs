//! The statement as tokens: a small MySQL lexer that keeps the content of version comments
//! (`/*!50100 ... */`, MariaDB `/*M!100100 ... */`), drops ordinary comments and optimizer
//! hints, unescapes backquoted names and string literals, and never fails on odd input
//! (an unterminated quote or comment ends the statement).

/// One token of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare word (keyword or unquoted name), as written.
    Word(String),
    /// A backquoted name, unescaped (a doubled backquote is one).
    Quoted(String),
    /// A string literal: the unescaped value, and its prefix (`_utf8mb4`, `N`, `b`, `x`), if any.
    Str { value: String, prefix: Option<String> },
    /// A number as written (`42`, `1.5e3`, `.5`, `0x1F`).
    Num(String),
    /// Punctuation or an operator: `(`, `)`, `,`, `.`, `=`, `;`, `-`, `<=`, ...
    Punct(String),
}

impl Tok {
    /// Whether the token is the keyword `kw` (case-insensitive; backquoted names never are).
    pub(crate) fn is(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    pub(crate) fn is_punct(&self, p: &str) -> bool {
        matches!(self, Tok::Punct(x) if x == p)
    }

    /// The name a token stands for, when it can be an identifier.
    pub(crate) fn ident(&self) -> Option<&str> {
        match self {
            Tok::Word(w) | Tok::Quoted(w) => Some(w),
            _ => None,
        }
    }

    /// The token written back as MySQL text (names backquoted, strings quoted).
    pub(crate) fn render(&self) -> String {
        match self {
            Tok::Word(w) | Tok::Num(w) | Tok::Punct(w) => w.clone(),
            Tok::Quoted(q) => crate::core::sql::quote_mysql_ident(q),
            Tok::Str { value, prefix } => {
                format!("{}'{}'", prefix.as_deref().unwrap_or(""), value.replace('\\', "\\\\").replace('\'', "''"))
            }
        }
    }
}

/// Renders tokens as one line of MySQL text.
pub(crate) fn render(toks: &[Tok]) -> String {
    let mut out = String::new();
    for (i, t) in toks.iter().enumerate() {
        let prev = if i == 0 { None } else { toks.get(i - 1) };
        let glue = prev.is_none()
            || t.is_punct(".")
            || t.is_punct(",")
            || t.is_punct(")")
            || (t.is_punct("(") && matches!(prev, Some(Tok::Word(_)) | Some(Tok::Quoted(_))))
            || prev.is_some_and(|p| p.is_punct(".") || p.is_punct("("));
        if !glue {
            out.push(' ');
        }
        out.push_str(&t.render());
    }
    out
}

/// Splits the text into tokens. Version comments keep their content; other comments go.
pub(crate) fn lex(query: &str) -> Vec<Tok> {
    let mut lx = Lexer { chars: query.char_indices().peekable(), src: query, out: Vec::new(), in_version: false };
    lx.run();
    lx.out
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    src: &'a str,
    out: Vec<Tok>,
    /// Inside `/*! ... */`: the next `*/` closes it.
    in_version: bool,
}

impl Lexer<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    /// The character after the next one.
    fn peek2(&mut self) -> Option<char> {
        let mut it = self.chars.clone();
        it.next();
        it.next().map(|(_, c)| c)
    }

    fn run(&mut self) {
        while let Some((at, c)) = self.chars.next() {
            match c {
                c if c.is_whitespace() => {}
                '#' => self.skip_line(),
                '-' if self.peek() == Some('-') && self.peek2().is_none_or(|c| c.is_whitespace()) => self.skip_line(),
                '/' if self.peek() == Some('*') => self.comment(),
                '*' if self.in_version && self.peek() == Some('/') => {
                    self.chars.next();
                    self.in_version = false;
                }
                '`' => {
                    let name = self.quoted('`');
                    self.out.push(Tok::Quoted(name));
                }
                '\'' | '"' => {
                    let value = self.quoted(c);
                    self.out.push(Tok::Str { value, prefix: None });
                }
                c if c.is_ascii_digit()
                    || (c == '.' && self.peek().is_some_and(|d| d.is_ascii_digit()) && !self.after_name()) =>
                {
                    self.number(at)
                }
                c if is_word_char(c) => self.word(at),
                _ => self.punct(c),
            }
        }
    }

    /// Whether the previous token is a name (so `.5` after it is a qualifier dot, not a number).
    fn after_name(&self) -> bool {
        matches!(self.out.last(), Some(Tok::Word(_)) | Some(Tok::Quoted(_)))
    }

    fn skip_line(&mut self) {
        for (_, c) in self.chars.by_ref() {
            if c == '\n' {
                break;
            }
        }
    }

    /// After `/`: a version comment opens (its content is lexed), anything else is skipped.
    fn comment(&mut self) {
        self.chars.next(); // '*'
        let version = match self.peek() {
            Some('!') => true,
            Some('M') if self.peek2() == Some('!') => {
                self.chars.next();
                true
            }
            _ => false,
        };
        if version && !self.in_version {
            self.chars.next(); // '!'
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.chars.next();
            }
            self.in_version = true;
            return;
        }
        let mut star = false;
        for (_, c) in self.chars.by_ref() {
            if star && c == '/' {
                return;
            }
            star = c == '*';
        }
    }

    /// A quoted name or string after its opening quote: doubled quotes and (in strings)
    /// backslash escapes are undone.
    fn quoted(&mut self, q: char) -> String {
        let mut s = String::new();
        while let Some((_, c)) = self.chars.next() {
            if c == q {
                if self.peek() == Some(q) {
                    self.chars.next();
                    s.push(q);
                    continue;
                }
                return s;
            }
            if c == '\\' && q != '`' {
                match self.chars.next() {
                    Some((_, e)) => {
                        // \% and \_ keep their backslash (LIKE patterns)
                        if e == '%' || e == '_' {
                            s.push('\\');
                        }
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            'b' => '\u{8}',
                            'Z' => '\u{1a}',
                            e => e,
                        })
                    }
                    None => return s,
                }
                continue;
            }
            s.push(c);
        }
        s
    }

    fn number(&mut self, start: usize) {
        let mut end = start + 1;
        let mut prev = '0';
        while let Some(&(i, c)) = self.chars.peek() {
            let exp_sign = (c == '+' || c == '-') && (prev == 'e' || prev == 'E');
            if c.is_ascii_alphanumeric() || c == '.' || exp_sign {
                self.chars.next();
                end = i + c.len_utf8();
                prev = c;
            } else {
                break;
            }
        }
        let text = self.src.get(start..end).unwrap_or("").to_string();
        // `1abc` is a name in MySQL; `0x1F`, `1e5` are numbers
        if text.chars().any(|c| c.is_ascii_alphabetic()) && !is_number_text(&text) {
            self.out.push(Tok::Word(text));
        } else {
            self.out.push(Tok::Num(text));
        }
    }

    fn word(&mut self, start: usize) {
        let mut end = start + self.src.get(start..).and_then(|s| s.chars().next()).map_or(1, char::len_utf8);
        while let Some(&(i, c)) = self.chars.peek() {
            if is_word_char(c) || c.is_ascii_digit() {
                self.chars.next();
                end = i + c.len_utf8();
            } else {
                break;
            }
        }
        let w = self.src.get(start..end).unwrap_or("").to_string();
        // introducers and prefixed literals: _utf8mb4'x', N'x', b'01', x'0A'
        if matches!(self.peek(), Some('\''))
            && (w.starts_with('_') || ["n", "b", "x"].contains(&w.to_ascii_lowercase().as_str()))
        {
            self.chars.next();
            let value = self.quoted('\'');
            self.out.push(Tok::Str { value, prefix: Some(w) });
            return;
        }
        self.out.push(Tok::Word(w));
    }

    fn punct(&mut self, c: char) {
        let two = |a: char, b: Option<char>| {
            matches!(
                (a, b),
                ('<', Some('=' | '>'))
                    | ('>', Some('='))
                    | ('!', Some('='))
                    | (':', Some('='))
                    | ('|', Some('|'))
                    | ('&', Some('&'))
            )
        };
        if two(c, self.peek()) {
            let n = self.chars.next().map(|(_, n)| n).unwrap_or_default();
            self.out.push(Tok::Punct(format!("{c}{n}")));
        } else {
            self.out.push(Tok::Punct(c.to_string()));
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$' || c == '@' || (!c.is_ascii() && !c.is_whitespace())
}

fn is_number_text(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    if let Some(hex) = l.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(bin) = l.strip_prefix("0b") {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1');
    }
    l.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(q: &str) -> Vec<String> {
        lex(q).iter().map(Tok::render).collect()
    }

    #[test]
    fn version_comments_keep_their_content() {
        assert_eq!(words("/*!40101 SET NAMES utf8 */"), ["SET", "NAMES", "utf8"]);
        assert_eq!(words("DROP TABLE `t` /* generated by server */"), ["DROP", "TABLE", "`t`"]);
        assert_eq!(
            words("CREATE TABLE t (a int) /*!50100 PARTITION BY HASH (a) */"),
            ["CREATE", "TABLE", "t", "(", "a", "int", ")", "PARTITION", "BY", "HASH", "(", "a", ")"]
        );
        assert_eq!(
            words("ALTER TABLE t /*M!100301 WAIT 5 */ ADD x int -- trailing\n"),
            ["ALTER", "TABLE", "t", "WAIT", "5", "ADD", "x", "int"]
        );
        assert_eq!(words("SELECT 1 # c\n, 2"), ["SELECT", "1", ",", "2"]);
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(lex("`a``b`"), vec![Tok::Quoted("a`b".into())]);
        assert_eq!(lex(r"'it''s\n'"), vec![Tok::Str { value: "it's\n".into(), prefix: None }]);
        assert_eq!(lex("_utf8mb4'x'"), vec![Tok::Str { value: "x".into(), prefix: Some("_utf8mb4".into()) }]);
        assert_eq!(lex("b'01' 1.5 -2 db.t1 1e5 t.`x`")[1], Tok::Num("1.5".into()));
        assert_eq!(words("db.t1"), ["db", ".", "t1"]);
        assert_eq!(lex("'open"), vec![Tok::Str { value: "open".into(), prefix: None }]);
        assert_eq!(render(&lex("a ( b , c ) . d")), "a(b, c).d");
    }
}
