//! How a source is reached: its URL with the password (inline, or read from the option
//! `password_file`), the TLS mode and CA (`ssl_mode`, `ssl_ca`) and the connect timeout. Every
//! connection to the source (checks, snapshot, copy, binlog stream) is built from here, so all
//! of them use TLS alike; connection errors are explained here (TLS refused, certificate
//! refused, account requiring TLS) without ever echoing the password.

use crate::core::error::{from_mysql, CoreError, CoreResult};
use crate::core::options::{SourceOptions, SslMode};
use crate::core::source_url::SourceUrl;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where `ssl_ca` PEM text is written for the driver (which reads a CA from a file): relative
/// to the working directory, which for every PostgreSQL process is the data directory.
const CA_DIR: &str = "pg_chameleon_rs";

#[derive(Debug, Clone)]
pub struct Endpoint {
    url: SourceUrl,
    ssl_mode: SslMode,
    ca_path: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl Endpoint {
    /// The endpoint of a source: URL parsed, password read from `password_file` when set,
    /// `ssl_ca` checked (PEM text written to a file the driver can read).
    pub fn resolve(url_text: &str, options: &SourceOptions) -> CoreResult<Endpoint> {
        let mut url = SourceUrl::parse(url_text)?;
        if let Some(file) = &options.password_file {
            if !url.password.is_empty() {
                return Err(CoreError::invalid_parameter(format!(
                    "{} has a password and option password_file is set: give the password one way",
                    url.redacted()
                ))
                .with_hint("leave the password out of mysql_url (mysql://user@host:port) and keep it in the file"));
            }
            url.password = read_password_file(Path::new(file))?;
        }
        let ca_path = match &options.ssl_ca {
            Some(ca) if options.ssl_mode.verifies() => {
                let data_dir = std::env::current_dir()
                    .map_err(|e| CoreError::internal(format!("no working directory for the ssl_ca file: {e}")))?;
                Some(ca_file(ca, &data_dir)?)
            }
            _ => None,
        };
        Ok(Endpoint {
            url,
            ssl_mode: options.ssl_mode,
            ca_path,
            connect_timeout: Duration::from_secs(options.connect_timeout as u64),
        })
    }

    pub fn url(&self) -> &SourceUrl {
        &self.url
    }

    /// The URL without its password: for errors, logs and views.
    pub fn redacted(&self) -> String {
        self.url.redacted()
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// Driver options, with TLS (`tls`) or without. TLS without verification for
    /// `preferred` and `required`; the chain checked for `verify_ca` (the driver also trusts
    /// the public web CAs of webpki-roots), and the host name too for `verify_identity`.
    pub fn opts(&self, read_timeout: Option<Duration>, tls: bool) -> mysql::Opts {
        let ssl = tls.then(|| {
            let base = mysql::SslOpts::default();
            match self.ssl_mode {
                SslMode::VerifyIdentity => base.with_root_cert_path(self.ca_path.clone()),
                SslMode::VerifyCa => {
                    base.with_root_cert_path(self.ca_path.clone()).with_danger_skip_domain_validation(true)
                }
                _ => base.with_danger_accept_invalid_certs(true).with_danger_skip_domain_validation(true),
            }
        });
        mysql::OptsBuilder::from_opts(self.url.opts(self.connect_timeout, read_timeout)).ssl_opts(ssl).into()
    }

    /// Whether the server offers no TLS this client can speak: no TLS at all, or only
    /// protocol versions or ciphers rustls refuses (the handshake's negotiation failed, before
    /// any certificate was looked at).
    pub fn tls_unavailable(e: &mysql::Error) -> bool {
        use rustls::AlertDescription as A;
        matches!(e, mysql::Error::DriverError(mysql::DriverError::TlsNotSupported))
            || matches!(
                tls_failure(e),
                Some(rustls::Error::PeerIncompatible(_))
                    | Some(rustls::Error::AlertReceived(
                        A::ProtocolVersion | A::HandshakeFailure | A::InsufficientSecurity
                    ))
            )
    }

    /// A connection error in words: what TLS had to do with it, never the password.
    pub fn connect_error(&self, e: mysql::Error) -> CoreError {
        let what = format!("cannot connect to {} (ssl_mode {})", self.redacted(), self.ssl_mode.name());
        if let mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) = &e {
            return CoreError::source_config(format!("{what}: the server does not offer TLS"))
                .with_hint("enable TLS on the source (ssl_cert, ssl_key), or set ssl_mode to preferred or disabled");
        }
        if let Some(tls) = tls_failure(&e) {
            let hint = match tls {
                _ if Self::tls_unavailable(&e) => "the server offers only TLS versions or ciphers this client refuses \
                     (it speaks TLS 1.2 and 1.3): update the source's TLS settings, or set ssl_mode to preferred \
                     (plain TCP with such a server)"
                    .to_string(),
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                    "ssl_ca must hold the CA certificate that signed the server's certificate".to_string()
                }
                rustls::Error::InvalidCertificate(c) if format!("{c:?}").starts_with("NotValidForName") => format!(
                    "the certificate does not name \"{}\": connect by a name it holds, or use ssl_mode verify_ca",
                    self.url.host
                ),
                _ => "check the source's TLS certificate and the options ssl_mode and ssl_ca".to_string(),
            };
            let message = format!("{what}: TLS failed: {tls}");
            // a refused certificate stays refused: no reconnecting in a loop
            let err = match tls {
                rustls::Error::InvalidCertificate(_) => CoreError::source_config(message),
                _ => CoreError::source_connection(message),
            };
            return err.with_hint(hint);
        }
        let refused = matches!(&e, mysql::Error::MySqlError(m) if m.code == 1045);
        let err = from_mysql(e, &what);
        if refused && self.ssl_mode == SslMode::Disabled {
            return err.with_hint(
                "check the user and password; an account created REQUIRE SSL (or X509) is also refused without TLS: \
                 set ssl_mode to preferred or higher",
            );
        }
        err
    }
}

/// The rustls error inside a driver error, if the TLS handshake failed (the driver wraps it
/// in an I/O error, itself in a packet codec error, depending on where the handshake failed).
fn tls_failure(e: &mysql::Error) -> Option<&rustls::Error> {
    let mut at: Option<&(dyn std::error::Error + 'static)> = match e {
        mysql::Error::IoError(io) => Some(io),
        mysql::Error::CodecError(c) => Some(c),
        mysql::Error::TlsError(t) => Some(t),
        _ => None,
    };
    while let Some(err) = at {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        at = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// The password in `path`: its first line. Refused, as libpq refuses a `.pgpass`, when the
/// group or others may read or write it.
pub fn read_password_file(path: &Path) -> CoreResult<String> {
    let shown = path.display();
    let hint = "create it as the operating system user PostgreSQL runs as, holding the password on its first line, \
                with chmod 600";
    let meta = std::fs::metadata(path).map_err(|e| {
        CoreError::source_config(format!("password_file \"{shown}\" cannot be read: {e}")).with_hint(hint)
    })?;
    if !meta.is_file() {
        return Err(CoreError::source_config(format!("password_file \"{shown}\" is not a file")).with_hint(hint));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(CoreError::source_config(format!(
            "password_file \"{shown}\" has group or world access (mode {:04o}); it must be readable by its owner only",
            mode & 0o7777
        ))
        .with_hint(format!("chmod 600 {shown}")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        CoreError::source_config(format!("password_file \"{shown}\" cannot be read: {e}")).with_hint(hint)
    })?;
    let password = text.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        return Err(CoreError::source_config(format!(
            "password_file \"{shown}\" is empty: its first line is the password"
        ))
        .with_hint(hint));
    }
    Ok(password)
}

/// The CA file the driver reads: `ssl_ca`'s path (checked readable), or its PEM text written
/// once under `data_dir` in a file named by the text's hash.
fn ca_file(ca: &str, data_dir: &Path) -> CoreResult<PathBuf> {
    if !ca.trim_start().starts_with("-----BEGIN") {
        let path = PathBuf::from(ca);
        let text = std::fs::read(&path).map_err(|e| {
            CoreError::source_config(format!("ssl_ca \"{ca}\" cannot be read: {e}"))
                .with_hint("the file must be readable by the operating system user PostgreSQL runs as")
        })?;
        if text.is_empty() {
            return Err(CoreError::source_config(format!("ssl_ca \"{ca}\" is empty")));
        }
        return Ok(path);
    }
    let dir = data_dir.join(CA_DIR);
    let path = dir.join(format!("ca-{:016x}.pem", fnv1a(ca.as_bytes())));
    if std::fs::read(&path).is_ok_and(|have| have == ca.as_bytes()) {
        return Ok(path);
    }
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        // written aside and renamed: a concurrent reader sees the whole file or none
        let tmp = dir.join(format!("ca-{}.tmp", std::process::id()));
        std::fs::write(&tmp, ca)?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        CoreError::source_config(format!("cannot write ssl_ca to {}: {e}", path.display()))
            .with_hint("give ssl_ca as the path of a PEM file instead")
    })?;
    Ok(path)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("chameleon-endpoint-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn password_file_like_pgpass() {
        let d = scratch("pw");
        let f = d.join("pw");
        write_mode(&f, "s3cret\nignored\n", 0o600);
        assert_eq!(read_password_file(&f).unwrap(), "s3cret");
        let opts = SourceOptions::from_json(&json!({"password_file": f.to_str().unwrap()})).unwrap();
        let ep = Endpoint::resolve("mysql://rep@db:3306", &opts).unwrap();
        assert_eq!(ep.url().password, "s3cret");
        assert!(!format!("{ep:?}").contains("s3cret"));
        let both = Endpoint::resolve("mysql://rep:inline@db:3306", &opts).unwrap_err().to_string();
        assert!(both.contains("password_file") && !both.contains("inline"), "{both}");
        write_mode(&f, "s3cret\n", 0o640);
        let e = read_password_file(&f).unwrap_err();
        assert!(e.to_string().contains("mode 0640") && !e.to_string().contains("s3cret"), "{e}");
        write_mode(&f, "\n", 0o600);
        assert!(read_password_file(&f).unwrap_err().to_string().contains("empty"));
        assert!(read_password_file(&d.join("none")).unwrap_err().to_string().contains("cannot be read"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn driver_tls_options_follow_ssl_mode() {
        let tls_of = |mode: &str| {
            let opts = SourceOptions::from_json(&json!({"ssl_mode": mode})).unwrap();
            let ep = Endpoint::resolve("mysql://u:p@db:3306", &opts).unwrap();
            ep.opts(None, true)
                .get_ssl_opts()
                .map(|s| (s.accept_invalid_certs(), s.skip_domain_validation(), s.root_cert_path().is_some()))
        };
        assert_eq!(tls_of("preferred"), Some((true, true, false)));
        assert_eq!(tls_of("required"), Some((true, true, false)));
        assert_eq!(tls_of("verify_ca"), Some((false, true, false)));
        assert_eq!(tls_of("verify_identity"), Some((false, false, false)));
        let opts = SourceOptions::from_json(&json!({"ssl_mode": "disabled"})).unwrap();
        let ep = Endpoint::resolve("mysql://u:p@db:3306", &opts).unwrap();
        assert!(ep.opts(None, false).get_ssl_opts().is_none());
    }

    #[test]
    fn ca_text_is_written_once_by_hash() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let d = scratch("ca");
        let p = ca_file(pem, &d).unwrap();
        assert!(p.starts_with(d.join(CA_DIR)), "{p:?}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), pem);
        assert_eq!(ca_file(pem, &d).unwrap(), p);
        let missing = d.join("missing.pem");
        assert!(ca_file(missing.to_str().unwrap(), &d).unwrap_err().to_string().contains("cannot be read"));
        std::fs::remove_dir_all(d).unwrap();
    }
}
