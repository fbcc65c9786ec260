//! [`ClientConfig`]: where to connect, as whom, from which device, with which local store, which CAs
//! to trust beyond the system's, and the client's timing (request timeout, heartbeat, reconnect backoff).

use std::path::PathBuf;
use std::time::Duration;

use duet_proto::client::{CONNECT_PATH, Platform, UserSig};

use crate::Error;

/// Where the client keeps what it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalStoreConfig {
    /// Nothing survives the client: each start syncs from cursor 0.
    Memory,
    /// A directory holding one SQLite file per user (created if missing). Use one directory per
    /// installation: two devices sharing a file would share one cursor.
    Sqlite(PathBuf),
}

/// What this client is to the server's multi-device policy (`docs/protocol.md`, *Transient sessions*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionKind {
    /// One of the user's devices (the default): it takes a slot of the server's multi-device policy (a
    /// device beyond it kicks the earliest of its group), makes the user Online and gets every push.
    #[default]
    Device,
    /// A tool beside the user's devices (a one-shot command, a script): it kicks no one and no login kicks
    /// it (the admin's kick still does), and it leaves the user's online status alone. Without `live` the
    /// server pushes it nothing: it sees only what it asks for (its catch-up after login included), so it
    /// raises no live [`Event::NewMessage`](crate::Event::NewMessage), and its history requests always go
    /// to the server (its local store cannot know what arrived since). With `live` it gets the pushes.
    Transient {
        /// Receive the user's pushes (new messages, read marks, relation events) as a device does.
        live: bool,
    },
}

/// How to reach the server and behave on the connection.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's base URL, the one its REST API uses: `http://host:7080` or `https://…`.
    pub server: String,
    /// The UserID to log in as (registered on first login, as in Tencent IM).
    pub user: String,
    /// A UserSig for `user` (`duet usersig --user …`); `Debug` shows only its first characters.
    pub usersig: UserSig,
    /// The platform this device reports; the server's multi-device policy groups devices by it.
    pub platform: Platform,
    /// A stable id of this installation. `None`: the one saved in the local store, or a new random one
    /// (saved there for next time).
    pub device: Option<String>,
    /// Where the cursor, messages and conversations are kept.
    pub store: LocalStoreConfig,
    /// A device, or a transient session beside the user's devices.
    pub session: SessionKind,
    /// How long a request may take, including waiting for a connection.
    pub request_timeout: Duration,
    /// How often to send `ping` while connected.
    pub heartbeat: Duration,
    /// The first reconnect delay; it doubles after each failure, with jitter.
    pub reconnect_min: Duration,
    /// The longest reconnect delay.
    pub reconnect_max: Duration,
    /// CA certificates (PEM) trusted for `https://`/`wss://` besides the system's roots, for a server
    /// whose certificate a private CA signed. Used by the WebSocket, uploads and downloads alike.
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl ClientConfig {
    /// A configuration with the defaults: platform `Linux`, a device session, a random device id, an
    /// in-memory store, 15 s request timeout, 30 s heartbeat, reconnecting after 100 ms doubling up to 10 s.
    pub fn new(server: impl Into<String>, user: impl Into<String>, usersig: impl Into<String>) -> ClientConfig {
        ClientConfig {
            server: server.into(),
            user: user.into(),
            usersig: UserSig::new(usersig),
            platform: Platform::Linux,
            device: None,
            store: LocalStoreConfig::Memory,
            session: SessionKind::Device,
            request_timeout: Duration::from_secs(15),
            heartbeat: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            extra_ca_pem: None,
        }
    }

    /// The same configuration on another platform.
    pub fn platform(mut self, platform: Platform) -> ClientConfig {
        self.platform = platform;
        self
    }

    /// The same configuration with another local store.
    pub fn store(mut self, store: LocalStoreConfig) -> ClientConfig {
        self.store = store;
        self
    }

    /// The same configuration as another kind of session.
    pub fn session(mut self, session: SessionKind) -> ClientConfig {
        self.session = session;
        self
    }

    /// The same configuration with a fixed device id.
    pub fn device(mut self, device: impl Into<String>) -> ClientConfig {
        self.device = Some(device.into());
        self
    }

    /// The same configuration also trusting the CA certificates in `pem` (one or more `CERTIFICATE`
    /// blocks). [`Client::connect`](crate::Client::connect) refuses PEM that holds no usable certificate.
    pub fn trust_ca_pem(mut self, pem: impl AsRef<[u8]>) -> ClientConfig {
        let all = self.extra_ca_pem.get_or_insert_with(Vec::new);
        if !all.is_empty() && !all.ends_with(b"\n") {
            all.push(b'\n');
        }
        all.extend_from_slice(pem.as_ref());
        self
    }

    pub(crate) fn validate(&self) -> Result<String, Error> {
        if self.user.is_empty() {
            return Err(Error::Config("user must not be empty".into()));
        }
        if self.request_timeout.is_zero() || self.heartbeat.is_zero() {
            return Err(Error::Config("request_timeout and heartbeat must be positive".into()));
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return Err(Error::Config("reconnect delays must satisfy 0 < reconnect_min <= reconnect_max".into()));
        }
        connect_url(&self.server)
    }
}

/// The WebSocket URL of a server base URL: `http` → `ws`, `https` → `wss`, plus [`CONNECT_PATH`].
pub fn connect_url(server: &str) -> Result<String, Error> {
    let base = server.trim().trim_end_matches('/');
    let (scheme, rest) =
        base.split_once("://").ok_or_else(|| Error::Config(format!("server {server:?} is not a URL")))?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(Error::Config(format!("server {server:?}: unsupported scheme {other:?}; use http or https")));
        }
    };
    if rest.is_empty() {
        return Err(Error::Config(format!("server {server:?} has no host")));
    }
    Ok(format!("{ws_scheme}://{rest}{CONNECT_PATH}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_map_to_the_websocket_endpoint() {
        assert_eq!(connect_url("http://127.0.0.1:7080").unwrap(), "ws://127.0.0.1:7080/v1/connect");
        assert_eq!(connect_url("https://im.example.com/").unwrap(), "wss://im.example.com/v1/connect");
        assert_eq!(connect_url("HTTPS://proxy.example.com/duet").unwrap(), "wss://proxy.example.com/duet/v1/connect");
        assert!(connect_url("ftp://x").is_err());
        assert!(connect_url("127.0.0.1:7080").is_err());
        assert!(connect_url("http://").is_err());
    }

    #[test]
    fn validation_refuses_nonsense() {
        let ok = ClientConfig::new("http://h:1", "bob", "sig");
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.user.clear();
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.reconnect_max = std::time::Duration::from_millis(1);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn a_printed_configuration_shows_no_usable_usersig() {
        let sig = "eJw1jl0LgjAUhv*LuzXYD93UuyjpwoIgIbqMM7dhlNM2I5D*e7Ps6lw8PO97nk*";
        let printed = format!("{:?}", ClientConfig::new("http://h:1", "bob", sig));
        assert!(printed.contains("usersig: eJw1…(63)"), "{printed}");
        assert!(!printed.contains(&sig[..8]), "{printed}");
    }
}
