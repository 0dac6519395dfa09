//! Raw → runtime: every value checked, every default applied, the first bad
//! value reported with its dotted key. One method per config group; the file is
//! long because ThingWorx's format is (the typed readers live in `values`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::raw::*;
use super::values::*;
use super::*;
use crate::secret::{Secret, SecretKey, reveal};

const LOG_LEVELS: [&str; 6] = ["AUDIT", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// Parses `config.json` text; `base` is the directory relative paths start from.
pub fn parse(text: &str, base: &Path) -> Result<Loaded, ConfigError> {
    let normalized = lenient::normalize(text);
    let value: Value = serde_json::from_str(&normalized)
        .map_err(|e| ConfigError::new("<file>", format!("not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ConfigError::new("<file>", "must be a JSON object"));
    }
    let raw: RawConfig =
        serde_json::from_value(value).map_err(|e| ConfigError::new("<file>", e.to_string()))?;
    let mut ctx = Ctx {
        base: base.to_path_buf(),
        warnings: Vec::new(),
        key: None,
    };
    let config = ctx.config(raw)?;
    Ok(Loaded {
        config,
        warnings: ctx.warnings,
    })
}

struct Ctx {
    base: PathBuf,
    warnings: Vec<String>,
    key: Option<SecretKey>,
}

impl Ctx {
    fn config(&mut self, raw: RawConfig) -> Result<Config, ConfigError> {
        self.unknown("", &raw.unknown);
        if let Some(path) = opt_string(&raw.secrets_key_file, "secrets_key_file")? {
            let path = self.path(&path);
            let key = SecretKey::load(&path)
                .map_err(|e| ConfigError::new("secrets_key_file", e.to_string()))?;
            self.key = Some(key);
        }
        let connection = self.connection(group(raw.ws_connection, "ws_connection")?)?;
        let servers = self.servers(raw.ws_servers, connection.tls)?;
        let resource = string(&raw.resource, "resource", defaults::RESOURCE)?;
        if !resource.starts_with('/') {
            return Err(ConfigError::new("resource", "must start with '/'"));
        }
        let app_key = match opt_string(&raw.app_key, "appKey")? {
            Some(k) if !k.trim().is_empty() => self.secret(&k, "appKey")?,
            _ => return Err(ConfigError::new("appKey", "is required")),
        };
        let logger = self.logger(group(raw.logger, "logger")?)?;
        let http_server = self.http_server(group(raw.http_server, "http_server")?)?;
        let fips: RawFips = group(raw.fips, "fips")?;
        self.unknown("fips.", &fips.unknown);
        if boolean(&fips.enabled, "fips.enabled", false)? {
            return Err(ConfigError::new(
                "fips.enabled",
                "FIPS mode is not supported by Tether",
            ));
        }
        let proxy: RawProxy = group(raw.proxy, "proxy")?;
        self.proxy(proxy)?;
        let offline_store = self.offline(group(raw.offline_msg_store, "offline_msg_store")?)?;
        let certificates = self.certificates(group(raw.certificates, "certificates")?)?;
        let auto_bind = self.auto_bind(raw.auto_bind)?;
        let tunnel = self.tunnel(group(raw.tunnel, "tunnel")?)?;
        let file = self.file(group(raw.file, "file")?)?;
        Ok(Config {
            servers,
            resource,
            app_key,
            logger,
            http_server,
            connection,
            offline_store,
            certificates,
            auto_bind,
            tunnel,
            file,
        })
    }

    fn servers(&mut self, v: Option<Value>, tls: bool) -> Result<Vec<ServerAddr>, ConfigError> {
        let default_port = if tls { defaults::SERVER_PORT } else { 80 };
        let Some(v) = v else {
            return Ok(vec![ServerAddr {
                host: defaults::SERVER_HOST.into(),
                port: default_port,
            }]);
        };
        let items = v
            .as_array()
            .ok_or_else(|| ConfigError::new("ws_servers", "must be a list of {host, port}"))?;
        if items.is_empty() {
            return Err(ConfigError::new(
                "ws_servers",
                "must name at least one server",
            ));
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let key = format!("ws_servers[{i}]");
            let raw: RawServer = group(Some(item.clone()), &key)?;
            self.unknown(&format!("{key}."), &raw.unknown);
            let host = string(&raw.host, &format!("{key}.host"), defaults::SERVER_HOST)?;
            if host.is_empty() {
                return Err(ConfigError::new(format!("{key}.host"), "must not be empty"));
            }
            let port = port(&raw.port, &format!("{key}.port"), default_port)?;
            out.push(ServerAddr { host, port });
        }
        Ok(out)
    }

    fn logger(&mut self, raw: RawLogger) -> Result<LoggerConfig, ConfigError> {
        self.unknown("logger.", &raw.unknown);
        let level = string(&raw.level, "logger.level", defaults::LOG_LEVEL)?.to_uppercase();
        if !LOG_LEVELS.contains(&level.as_str()) {
            return Err(ConfigError::new(
                "logger.level",
                format!("must be one of {}", LOG_LEVELS.join(", ")),
            ));
        }
        for (key, v) in [
            ("audit_target", &raw.audit_target),
            ("publish_directory", &raw.publish_directory),
            ("publish_level", &raw.publish_level),
            ("max_file_storage", &raw.max_file_storage),
            ("auto_flush", &raw.auto_flush),
            ("flush_chunk_size", &raw.flush_chunk_size),
            ("buffer_size", &raw.buffer_size),
        ] {
            if v.is_some() {
                self.ignored(
                    &format!("logger.{key}"),
                    "logs go to stderr through tracing",
                );
            }
        }
        Ok(LoggerConfig { level })
    }

    fn http_server(&mut self, raw: RawHttpServer) -> Result<HttpServerConfig, ConfigError> {
        self.unknown("http_server.", &raw.unknown);
        let host = string(&raw.host, "http_server.host", defaults::HTTP_HOST)?;
        if host != "localhost" && host.parse::<std::net::IpAddr>().is_err() {
            return Err(ConfigError::new(
                "http_server.host",
                "must be localhost or an IP address (0.0.0.0 for all)",
            ));
        }
        let port = port(&raw.port, "http_server.port", defaults::HTTP_PORT)?;
        let tls = if boolean(&raw.ssl, "http_server.ssl", false)? {
            let cert = opt_string(&raw.certificate, "http_server.certificate")?;
            let key = opt_string(&raw.private_key, "http_server.private_key")?;
            let use_default = boolean(
                &raw.use_default_certificate,
                "http_server.use_default_certificate",
                false,
            )?;
            match (cert, key) {
                (Some(c), Some(k)) => Some(HttpTls::Files {
                    certificate: self.path(&c),
                    private_key: self.path(&k),
                }),
                (None, None) if use_default => Some(HttpTls::SelfSigned),
                (None, None) => {
                    return Err(ConfigError::new(
                        "http_server.certificate",
                        "ssl is true: set certificate and private_key, or use_default_certificate",
                    ));
                }
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        "http_server.private_key",
                        "is required with http_server.certificate",
                    ));
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        "http_server.certificate",
                        "is required with http_server.private_key",
                    ));
                }
            }
        } else {
            None
        };
        if raw.passphrase.is_some() {
            self.ignored(
                "http_server.passphrase",
                "encrypted private keys are not supported; use an unencrypted PEM key",
            );
        }
        let basic_auth = if boolean(&raw.authenticate, "http_server.authenticate", false)? {
            let user = opt_string(&raw.user, "http_server.user")?
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    ConfigError::new("http_server.user", "is required when authenticate is true")
                })?;
            let password = opt_string(&raw.password, "http_server.password")?.ok_or_else(|| {
                ConfigError::new(
                    "http_server.password",
                    "is required when authenticate is true",
                )
            })?;
            Some(BasicAuth {
                user,
                password: self.secret(&password, "http_server.password")?,
            })
        } else {
            None
        };
        Ok(HttpServerConfig {
            host,
            port,
            tls,
            basic_auth,
            content_read_timeout: millis(
                &raw.content_read_timeout,
                "http_server.content_read_timeout",
                defaults::CONTENT_READ_TIMEOUT_MS,
                100,
                3_600_000,
            )?,
            ports_to_try: number(
                &raw.ports_to_try,
                "http_server.ports_to_try",
                u64::from(defaults::PORTS_TO_TRY),
                0,
                1000,
            )? as u16,
            max_clients: number(
                &raw.max_clients,
                "http_server.max_clients",
                defaults::MAX_CLIENTS as u64,
                1,
                10_000,
            )? as usize,
        })
    }

    fn connection(&mut self, raw: RawWsConnection) -> Result<ConnectionConfig, ConfigError> {
        self.unknown("ws_connection.", &raw.unknown);
        let encryption = string(&raw.encryption, "ws_connection.encryption", "ssl")?;
        let tls = match encryption.trim().to_ascii_lowercase().as_str() {
            "ssl" | "tls" => true,
            "none" => false,
            _ => {
                return Err(ConfigError::new(
                    "ws_connection.encryption",
                    "must be \"ssl\" or \"none\"",
                ));
            }
        };
        let k = |name: &str| format!("ws_connection.{name}");
        let max_msg_size = number(
            &raw.max_msg_size,
            &k("max_msg_size"),
            defaults::MAX_MSG_SIZE as u64,
            1024,
            256 * 1024 * 1024,
        )? as usize;
        let message_chunk_size = number(
            &raw.message_chunk_size,
            &k("message_chunk_size"),
            defaults::MESSAGE_CHUNK_SIZE as u64,
            256,
            max_msg_size as u64,
        )? as usize;
        let duty = number(
            &raw.duty_cycle,
            &k("duty_cycle"),
            u64::from(defaults::DUTY_CYCLE),
            1,
            100,
        )?;
        let period = millis(
            &raw.connect_period,
            &k("connect_period"),
            defaults::CONNECT_PERIOD_MS,
            0,
            86_400_000,
        )?;
        let duty_cycle = if duty < 100 && !period.is_zero() {
            if period < Duration::from_millis(100) {
                return Err(ConfigError::new(
                    k("connect_period"),
                    "must be at least 100 ms when duty_cycle is below 100",
                ));
            }
            let on = period * duty as u32 / 100;
            Some(DutyCycle {
                on,
                off: period - on,
            })
        } else {
            None
        };
        let retries = integer(&raw.connect_retries, &k("connect_retries"), -1)?;
        let connect_retries = match retries {
            -1 => None,
            n if (0..=i64::from(u32::MAX)).contains(&n) => Some(n as u32),
            _ => {
                return Err(ConfigError::new(
                    k("connect_retries"),
                    "must be -1 (forever) or a count ≥ 0",
                ));
            }
        };
        for (name, v, why) in [
            ("verbose", &raw.verbose, "use RUST_LOG=trace"),
            (
                "binary_mode",
                &raw.binary_mode,
                "messages are always binary",
            ),
            (
                "compression",
                &raw.compression,
                "permessage-deflate is not offered",
            ),
            (
                "connect_on_demand",
                &raw.connect_on_demand,
                "not supported: requests made during the off time are stored offline",
            ),
            (
                "socket_read_timeout",
                &raw.socket_read_timeout,
                "not needed by the async runtime",
            ),
            (
                "frame_read_timeout",
                &raw.frame_read_timeout,
                "not needed by the async runtime",
            ),
            (
                "ssl_read_timeout",
                &raw.ssl_read_timeout,
                "not needed by the async runtime",
            ),
        ] {
            if v.is_some() {
                self.ignored(&k(name), why);
            }
        }
        if !boolean(&raw.binary_mode, &k("binary_mode"), true)? {
            return Err(ConfigError::new(
                k("binary_mode"),
                "text mode is not supported",
            ));
        }
        Ok(ConnectionConfig {
            tls,
            msg_timeout: millis(
                &raw.msg_timeout,
                &k("msg_timeout"),
                defaults::MSG_TIMEOUT_MS,
                100,
                3_600_000,
            )?,
            ping_rate: millis(
                &raw.ping_rate,
                &k("ping_rate"),
                defaults::PING_RATE_MS,
                100,
                3_600_000,
            )?,
            pingpong_timeout: millis(
                &raw.pingpong_timeout,
                &k("pingpong_timeout"),
                defaults::PINGPONG_TIMEOUT_MS,
                100,
                3_600_000,
            )?,
            duty_cycle,
            message_idle_time: millis(
                &raw.message_idle_time,
                &k("message_idle_time"),
                defaults::MESSAGE_IDLE_TIME_MS,
                0,
                600_000,
            )?,
            max_msg_size,
            message_chunk_size,
            max_frame_size: number(
                &raw.max_frame_size,
                &k("max_frame_size"),
                defaults::MAX_FRAME_SIZE as u64,
                256,
                16 * 1024 * 1024,
            )? as usize,
            max_messages: number(
                &raw.max_messages,
                &k("max_messages"),
                defaults::MAX_MESSAGES as u64,
                1,
                100_000,
            )? as usize,
            connect_timeout: millis(
                &raw.connect_timeout,
                &k("connect_timeout"),
                defaults::CONNECT_TIMEOUT_MS,
                100,
                600_000,
            )?,
            connect_retry_interval: millis(
                &raw.connect_retry_interval,
                &k("connect_retry_interval"),
                defaults::CONNECT_RETRY_INTERVAL_MS,
                10,
                3_600_000,
            )?,
            max_threads: number(
                &raw.max_threads,
                &k("max_threads"),
                defaults::MAX_THREADS as u64,
                1,
                50,
            )? as usize,
            max_connect_delay: millis(
                &raw.max_connect_delay,
                &k("max_connect_delay"),
                defaults::MAX_CONNECT_DELAY_MS,
                0,
                3_600_000,
            )?,
            connect_retries,
        })
    }

    fn proxy(&mut self, raw: RawProxy) -> Result<(), ConfigError> {
        self.unknown("proxy.", &raw.unknown);
        let host = opt_string(&raw.host, "proxy.host")?;
        port(&raw.port, "proxy.port", defaults::PROXY_PORT)?;
        if let Some(pw) = opt_string(&raw.password, "proxy.password")? {
            self.secret(&pw, "proxy.password")?;
        }
        if host.is_some_and(|h| !h.is_empty()) {
            return Err(ConfigError::new(
                "proxy.host",
                "connecting through a proxy is not supported yet",
            ));
        }
        Ok(())
    }

    fn offline(&mut self, raw: RawOfflineStore) -> Result<OfflineStoreConfig, ConfigError> {
        self.unknown("offline_msg_store.", &raw.unknown);
        let directory = opt_string(&raw.directory, "offline_msg_store.directory")?
            .filter(|d| !d.is_empty())
            .map(|d| self.path(&d));
        Ok(OfflineStoreConfig {
            enabled: boolean(&raw.enabled, "offline_msg_store.enabled", true)?,
            directory,
            max_size: number(
                &raw.max_size,
                "offline_msg_store.max_size",
                defaults::OFFLINE_MAX_SIZE,
                0,
                1 << 30,
            )?,
        })
    }

    fn certificates(&mut self, raw: RawCertificates) -> Result<CertificatesConfig, ConfigError> {
        self.unknown("certificates.", &raw.unknown);
        let cert_chain = string_list(&raw.cert_chain, "certificates.cert_chain")?
            .into_iter()
            .map(|p| self.path(&p))
            .collect();
        let mut pinned_sha256 = Vec::new();
        for (i, text) in string_list(&raw.pinned_sha256, "certificates.pinned_sha256")?
            .into_iter()
            .enumerate()
        {
            let Ok(fp) = text.parse::<net::Fingerprint>() else {
                return Err(ConfigError::new(
                    format!("certificates.pinned_sha256[{i}]"),
                    "must be a SHA-256 fingerprint: 64 hex digits, colons allowed",
                ));
            };
            pinned_sha256.push(fp.0);
        }
        let client_cert =
            opt_string(&raw.client_cert, "certificates.client_cert")?.map(|p| self.path(&p));
        let key_file = opt_string(&raw.key_file, "certificates.key_file")?.map(|p| self.path(&p));
        if client_cert.is_some() != key_file.is_some() {
            return Err(ConfigError::new(
                "certificates.key_file",
                "client_cert and key_file go together",
            ));
        }
        if raw.key_passphrase.is_some() {
            self.ignored(
                "certificates.key_passphrase",
                "encrypted client keys are not supported; use an unencrypted PEM key",
            );
        }
        if raw.validation_criteria.is_some() {
            self.ignored(
                "certificates.validation_criteria",
                "use cert_chain or pinned_sha256 to restrict the server certificate",
            );
        }
        Ok(CertificatesConfig {
            validate: boolean(&raw.validate, "certificates.validate", true)?,
            allow_self_signed: boolean(
                &raw.allow_self_signed,
                "certificates.allow_self_signed",
                false,
            )?,
            cert_chain,
            pinned_sha256,
            client_cert,
            key_file,
        })
    }

    fn auto_bind(&mut self, v: Option<Value>) -> Result<Vec<AutoBind>, ConfigError> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let items = v
            .as_array()
            .ok_or_else(|| ConfigError::new("auto_bind", "must be a list"))?;
        let mut out: Vec<AutoBind> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let key = format!("auto_bind[{i}]");
            let raw: RawAutoBind = group(Some(item.clone()), &key)?;
            self.unknown(&format!("{key}."), &raw.unknown);
            let name = opt_string(&raw.name, &format!("{key}.name"))?
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ConfigError::new(format!("{key}.name"), "is required"))?;
            if out.iter().any(|b| b.name == name) {
                return Err(ConfigError::new(
                    format!("{key}.name"),
                    format!("{name:?} is listed twice"),
                ));
            }
            let gateway = boolean(&raw.gateway, &format!("{key}.gateway"), false)?;
            if gateway && out.iter().any(|b| b.gateway) {
                return Err(ConfigError::new(
                    format!("{key}.gateway"),
                    "only one auto_bind entry may be the gateway",
                ));
            }
            let endpoint = self.endpoint(&raw, &key)?;
            if raw.accept.is_some() {
                self.ignored(&format!("{key}.accept"), "JSON is always used");
            }
            out.push(AutoBind {
                name,
                gateway,
                endpoint: (!gateway).then_some(endpoint),
            });
        }
        Ok(out)
    }

    fn endpoint(&mut self, raw: &RawAutoBind, key: &str) -> Result<Endpoint, ConfigError> {
        let protocol = string(&raw.protocol, &format!("{key}.protocol"), "http")?;
        let https = match protocol.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => {
                return Err(ConfigError::new(
                    format!("{key}.protocol"),
                    "must be http or https",
                ));
            }
        };
        let host = string(&raw.host, &format!("{key}.host"), defaults::BIND_HOST)?;
        if host.is_empty() {
            return Err(ConfigError::new(format!("{key}.host"), "must not be empty"));
        }
        let path = string(&raw.path, &format!("{key}.path"), defaults::BIND_PATH)?;
        if !path.starts_with('/') {
            return Err(ConfigError::new(
                format!("{key}.path"),
                "must start with '/'",
            ));
        }
        let user = opt_string(&raw.user, &format!("{key}.user"))?.filter(|u| !u.is_empty());
        let basic_auth = match user {
            Some(user) => {
                let pw = opt_string(&raw.password, &format!("{key}.password"))?.unwrap_or_default();
                Some((user, self.secret(&pw, &format!("{key}.password"))?))
            }
            None => None,
        };
        Ok(Endpoint {
            https,
            host,
            port: port(&raw.port, &format!("{key}.port"), defaults::BIND_PORT)?,
            path,
            timeout: millis(
                &raw.timeout,
                &format!("{key}.timeout"),
                defaults::BIND_TIMEOUT_MS,
                10,
                3_600_000,
            )?,
            basic_auth,
        })
    }

    fn tunnel(&mut self, raw: RawTunnel) -> Result<TunnelConfig, ConfigError> {
        self.unknown("tunnel.", &raw.unknown);
        let mut allowed_targets = Vec::new();
        for (i, text) in string_list(&raw.allowed_targets, "tunnel.allowed_targets")?
            .into_iter()
            .enumerate()
        {
            let target = parse_target(&text).ok_or_else(|| {
                ConfigError::new(
                    format!("tunnel.allowed_targets[{i}]"),
                    format!("{text:?} is not host:port (IPv6 as [addr]:port, port 1-65535)"),
                )
            })?;
            allowed_targets.push(target);
        }
        let mode = match raw.mode.as_ref() {
            None | Some(Value::Null) => TunnelMode::Auto,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("auto") => TunnelMode::Auto,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("native") => TunnelMode::Native,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("legacy") => TunnelMode::Legacy,
            Some(other) => {
                return Err(ConfigError::new(
                    "tunnel.mode",
                    format!("{other} is not \"auto\", \"native\" or \"legacy\""),
                ));
            }
        };
        Ok(TunnelConfig {
            mode,
            tick_resolution: millis(
                &raw.tick_resolution,
                "tunnel.tick_resolution",
                defaults::TUNNEL_TICK_MS,
                1,
                10_000,
            )?,
            buffer_size: number(
                &raw.buffer_size,
                "tunnel.buffer_size",
                defaults::TUNNEL_BUFFER_SIZE as u64,
                256,
                1 << 20,
            )? as usize,
            read_timeout: millis(
                &raw.read_timeout,
                "tunnel.read_timeout",
                defaults::TUNNEL_READ_TIMEOUT_MS,
                1,
                600_000,
            )?,
            idle_timeout: millis(
                &raw.idle_timeout,
                "tunnel.idle_timeout",
                defaults::TUNNEL_IDLE_TIMEOUT_MS,
                1000,
                86_400_000,
            )?,
            max_concurrent: number(
                &raw.max_concurrent,
                "tunnel.max_concurrent",
                defaults::TUNNEL_MAX_CONCURRENT as u64,
                1,
                1000,
            )? as usize,
            allowed_targets,
        })
    }

    fn file(&mut self, raw: RawFile) -> Result<FileConfig, ConfigError> {
        self.unknown("file.", &raw.unknown);
        let mut virtual_dirs = Vec::new();
        if let Some(v) = &raw.virtual_dirs {
            let items = v.as_array().ok_or_else(|| {
                ConfigError::new(
                    "file.virtual_dirs",
                    "must be a list of {\"name\": \"path\"}",
                )
            })?;
            for (i, item) in items.iter().enumerate() {
                let key = format!("file.virtual_dirs[{i}]");
                let obj = item.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                    ConfigError::new(&key, "must be one {\"name\": \"path\"} pair")
                })?;
                for (name, path) in obj {
                    let path = path
                        .as_str()
                        .ok_or_else(|| ConfigError::new(&key, "path must be a string"))?;
                    virtual_dirs.push((name.clone(), PathBuf::from(path)));
                }
            }
        }
        for (name, v) in [
            ("idle_timeout", &raw.idle_timeout),
            ("staging_dir", &raw.staging_dir),
        ] {
            if v.is_some() {
                self.ignored(
                    &format!("file.{name}"),
                    "file transfer is not implemented yet",
                );
            }
        }
        Ok(FileConfig {
            buffer_size: number(
                &raw.buffer_size,
                "file.buffer_size",
                defaults::FILE_BUFFER_SIZE as u64,
                256,
                16 << 20,
            )? as usize,
            max_file_size: number(
                &raw.max_file_size,
                "file.max_file_size",
                defaults::FILE_MAX_SIZE,
                0,
                u64::MAX,
            )?,
            virtual_dirs,
        })
    }

    fn secret(&self, value: &str, key: &str) -> Result<Secret, ConfigError> {
        reveal(value, self.key.as_ref()).map_err(|e| ConfigError::new(key, e.to_string()))
    }

    fn path(&self, p: &str) -> PathBuf {
        let path = PathBuf::from(p);
        if path.is_absolute() {
            path
        } else {
            self.base.join(path)
        }
    }

    fn unknown(&mut self, prefix: &str, unknown: &Unknown) {
        for key in unknown.keys() {
            self.warnings
                .push(format!("{prefix}{key}: unknown key, ignored"));
        }
    }

    fn ignored(&mut self, key: &str, why: &str) {
        self.warnings
            .push(format!("{key}: accepted but not used ({why})"));
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
