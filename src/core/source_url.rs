//! The MySQL connection URL of a source: `mysql://user:password@host:port[/]`.
//!
//! Parsed here (not by the driver) so that every error names the problem without ever
//! echoing the password, and so that the redacted form shown in views and logs is built in
//! one place.

use crate::core::error::{CoreError, CoreResult};
use std::time::Duration;

#[derive(Clone, PartialEq, Eq)]
pub struct SourceUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn bad(msg: impl Into<String>) -> CoreError {
    CoreError::invalid_parameter(format!("invalid mysql_url: {}", msg.into()))
}

fn percent_decode(part: &str, what: &str) -> CoreResult<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(format!("bad percent-escape in the {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(format!("the {what} is not valid UTF-8")))
}

impl SourceUrl {
    pub fn parse(url: &str) -> CoreResult<SourceUrl> {
        let rest = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
            .ok_or_else(|| bad("it must start with mysql:// (mysql://user:password@host:port)"))?;
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        if !path.is_empty() {
            return Err(bad("a database name in the URL is not used; map schemas with schema_mappings instead"));
        }
        let (userinfo, hostport) =
            authority.rsplit_once('@').ok_or_else(|| bad("no user given (mysql://user:password@host:port)"))?;
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, p),
            None => (userinfo, ""),
        };
        let user = percent_decode(user, "user name")?;
        let password = percent_decode(password, "password")?;
        if user.is_empty() {
            return Err(bad("empty user name"));
        }
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [ipv6]:port
            let (h, after) = h.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
            (h.to_string(), after.strip_prefix(':').unwrap_or(""))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = if port.is_empty() {
            3306
        } else {
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(format!("port \"{port}\" is not a number from 1 to 65535")))?
        };
        Ok(SourceUrl { user, password, host, port })
    }

    /// The URL with the password replaced: safe for views, errors and logs.
    pub fn redacted(&self) -> String {
        format!("mysql://{}:***@{}:{}", self.user, self.host, self.port)
    }

    /// Driver options: TCP only, bounded connect and read timeouts so that an unreachable or
    /// silent server gives an error instead of a hang; packets up to MySQL's 1 GB limit (a row
    /// or a row event with large blobs), whatever the server's own `max_allowed_packet`.
    pub fn opts(&self, connect_timeout: Duration, read_timeout: Option<Duration>) -> mysql::Opts {
        mysql::OptsBuilder::new()
            .ip_or_hostname(Some(self.host.clone()))
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .prefer_socket(false)
            .tcp_connect_timeout(Some(connect_timeout))
            .read_timeout(read_timeout)
            .write_timeout(Some(connect_timeout.max(Duration::from_secs(30))))
            .max_allowed_packet(Some(1 << 30))
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_url() {
        let u = SourceUrl::parse("mysql://rep%40x:p%3Aw@db.example:3307").unwrap();
        assert_eq!(u.user, "rep@x");
        assert_eq!(u.password, "p:w");
        assert_eq!(u.host, "db.example");
        assert_eq!(u.port, 3307);
        assert_eq!(u.redacted(), "mysql://rep@x:***@db.example:3307");
        assert!(!format!("{u:?}").contains("p:w"));
    }

    #[test]
    fn defaults_and_ipv6() {
        let u = SourceUrl::parse("mysql://u@localhost/").unwrap();
        assert_eq!((u.port, u.password.as_str()), (3306, ""));
        let u = SourceUrl::parse("mysql://u:p@[::1]:3310").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 3310));
    }

    #[test]
    fn rejects_bad_urls_without_leaking_the_password() {
        for url in [
            "postgres://u:secret@h:1",
            "mysql://h:3306",
            "mysql://:secret@h:3306",
            "mysql://u:secret@h:99999",
            "mysql://u:secret@h:abc",
            "mysql://u:secret@:3306",
            "mysql://u:secret@h:3306/db",
            "mysql://u:sec%zzret@h:3306",
        ] {
            let err = SourceUrl::parse(url).unwrap_err().to_string();
            assert!(err.starts_with("invalid mysql_url"), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
        }
    }
}
