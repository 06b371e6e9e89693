//! The `<security>` handshake (HELO, PING, PONG), sans-I/O.
//!
//! Mirrors in_forward.rb (`generate_helo`, `check_ping`, `generate_pong`) and
//! out_forward/handshake_protocol.rb (`check_helo`, `generate_ping`,
//! `check_pong`), including their failure reasons, which clients log. Nonce and
//! salts come from the caller (no randomness here); every field is hashed as raw
//! bytes, never UTF-8-checked (Fluent Bit's salt is 16 random bytes in a str).
//!
//! Server flow: send [`Handshake::helo`] on connect; cut the next message with
//! [`crate::Decoder::decode_raw`]; send [`Handshake::on_ping`]'s reply; close
//! after writing it unless `ok`. Per-client shared keys and the anonymous-source
//! rule depend on the peer address: the caller resolves the key before
//! [`Handshake::new`], and can refuse a peer with [`encode_pong_failure`]
//! (in_forward's reason: `anonymous source host '<addr>' denied`).

use std::fmt;

use rmp::encode as mp;
use rmpv::Value;
use sha2::{Digest, Sha512};

use crate::value::bytes_of;

/// in_forward's failure reasons, sent in the PONG.
pub const REASON_INVALID_PING: &str = "invalid ping message";
pub const REASON_SHARED_KEY_MISMATCH: &str = "shared_key mismatch";
pub const REASON_USER_MISMATCH: &str = "username/password mismatch";

/// `hex(sha512(salt ‖ hostname ‖ nonce ‖ shared_key))`, lowercase.
pub fn shared_key_digest(salt: &[u8], hostname: &[u8], nonce: &[u8], shared_key: &[u8]) -> String {
    hex_digest(&[salt, hostname, nonce, shared_key])
}

/// `hex(sha512(auth_salt ‖ username ‖ password))`, lowercase.
pub fn password_digest(auth_salt: &[u8], username: &[u8], password: &[u8]) -> String {
    hex_digest(&[auth_salt, username, password])
}

fn hex_digest(parts: &[&[u8]]) -> String {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    let mut s = String::with_capacity(128);
    for b in h.finalize() {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// Equality that does not stop at the first differing byte, so response time
/// does not tell an attacker how much of a digest was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A user for `user_auth` (in_forward `<user>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub username: Vec<u8>,
    pub password: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeState {
    AwaitingPing,
    Established,
    /// A failure PONG was produced; close after writing it.
    Failed,
}

/// The server's answer to a PING.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pong {
    /// msgpack PONG to write.
    pub reply: Vec<u8>,
    pub ok: bool,
    /// Empty when `ok`.
    pub reason: String,
    /// As sent in the PING (for logs), when it could be read.
    pub client_hostname: Option<Vec<u8>>,
    /// The PING's username (empty without user auth).
    pub username: Option<Vec<u8>>,
}

/// Server side of one connection's handshake.
#[derive(Clone, Debug)]
pub struct Handshake {
    server_hostname: Vec<u8>,
    shared_key: Vec<u8>,
    users: Vec<User>,
    nonce: Vec<u8>,
    auth_salt: Vec<u8>,
    keepalive: bool,
    state: HandshakeState,
}

impl Handshake {
    /// `nonce` and `auth_salt`: fresh random bytes per connection (in_forward:
    /// 16 each). User authentication is on when `users` is non-empty. in_forward
    /// always sends its auth salt in the HELO, users or not; pass an empty one
    /// to advertise no user auth.
    pub fn new(
        server_hostname: &[u8],
        shared_key: &[u8],
        users: Vec<User>,
        nonce: &[u8],
        auth_salt: &[u8],
    ) -> Self {
        Handshake {
            server_hostname: server_hostname.to_vec(),
            shared_key: shared_key.to_vec(),
            users,
            nonce: nonce.to_vec(),
            auth_salt: auth_salt.to_vec(),
            keepalive: true,
            state: HandshakeState::AwaitingPing,
        }
    }

    /// The HELO's `keepalive` (in_forward: `!deny_keepalive`); default true.
    pub fn with_keepalive(mut self, keepalive: bool) -> Self {
        self.keepalive = keepalive;
        self
    }

    pub fn state(&self) -> HandshakeState {
        self.state
    }

    /// `["HELO", {"nonce": bin, "auth": bin, "keepalive": bool}]`.
    pub fn helo(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let _ = mp::write_array_len(&mut out, 2);
        write_str(&mut out, b"HELO");
        let _ = mp::write_map_len(&mut out, 3);
        write_str(&mut out, b"nonce");
        write_bin(&mut out, &self.nonce);
        write_str(&mut out, b"auth");
        write_bin(&mut out, &self.auth_salt);
        write_str(&mut out, b"keepalive");
        let _ = mp::write_bool(&mut out, self.keepalive);
        out
    }

    /// Checks a PING (one whole msgpack message) as in_forward's `check_ping`.
    /// Only the first PING is accepted; later calls fail.
    pub fn on_ping(&mut self, ping: &[u8]) -> Pong {
        let fail = |this: &mut Self, reason: &str, host: Option<&[u8]>, user: Option<&[u8]>| {
            this.state = HandshakeState::Failed;
            Pong {
                reply: encode_pong_failure(reason),
                ok: false,
                reason: reason.to_string(),
                client_hostname: host.map(<[u8]>::to_vec),
                username: user.map(<[u8]>::to_vec),
            }
        };
        if self.state != HandshakeState::AwaitingPing {
            return fail(self, REASON_INVALID_PING, None, None);
        }
        let mut rd = ping;
        let fields = match rmpv::decode::read_value(&mut rd) {
            Ok(Value::Array(a)) if a.len() == 6 => a,
            _ => return fail(self, REASON_INVALID_PING, None, None),
        };
        let f: Vec<Option<&[u8]>> = fields.iter().map(bytes_of).collect();
        let (Some(b"PING"), Some(host), Some(salt), Some(digest), Some(user), Some(pass)) =
            (f[0], f[1], f[2], f[3], f[4], f[5])
        else {
            return fail(self, REASON_INVALID_PING, None, None);
        };
        let expected = shared_key_digest(salt, host, &self.nonce, &self.shared_key);
        if !same(digest, expected.as_bytes()) {
            return fail(self, REASON_SHARED_KEY_MISMATCH, Some(host), Some(user));
        }
        if !self.users.is_empty() {
            // Every user of that name is tried, as in_forward does; an unknown
            // name gets the same answer as a wrong password.
            let mut ok = false;
            for u in self.users.iter().filter(|u| u.username == user) {
                let want = password_digest(&self.auth_salt, user, &u.password);
                ok |= same(pass, want.as_bytes());
            }
            if !ok {
                return fail(self, REASON_USER_MISMATCH, Some(host), Some(user));
            }
        }
        self.state = HandshakeState::Established;
        let digest = shared_key_digest(salt, &self.server_hostname, &self.nonce, &self.shared_key);
        let mut reply = Vec::with_capacity(160 + self.server_hostname.len());
        let _ = mp::write_array_len(&mut reply, 5);
        write_str(&mut reply, b"PONG");
        let _ = mp::write_bool(&mut reply, true);
        write_str(&mut reply, b"");
        write_str(&mut reply, &self.server_hostname);
        write_str(&mut reply, digest.as_bytes());
        Pong {
            reply,
            ok: true,
            reason: String::new(),
            client_hostname: Some(host.to_vec()),
            username: Some(user.to_vec()),
        }
    }
}

/// `["PONG", false, reason, "", ""]`.
pub fn encode_pong_failure(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + reason.len());
    let _ = mp::write_array_len(&mut out, 5);
    write_str(&mut out, b"PONG");
    let _ = mp::write_bool(&mut out, false);
    write_str(&mut out, reason.as_bytes());
    write_str(&mut out, b"");
    write_str(&mut out, b"");
    out
}

fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    let _ = mp::write_str_len(out, s.len() as u32);
    out.extend_from_slice(s);
}

fn write_bin(out: &mut Vec<u8>, s: &[u8]) {
    let _ = mp::write_bin_len(out, s.len() as u32);
    out.extend_from_slice(s);
}

/// A client-side handshake failure, worded as out_forward words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeError(pub String);

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "forward handshake failed: {}", self.0)
    }
}

impl std::error::Error for HandshakeError {}

/// What a client learns from the HELO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Helo {
    pub nonce: Vec<u8>,
    /// User-auth salt; empty when the server wants no username/password.
    pub auth: Vec<u8>,
    pub keepalive: bool,
}

/// Client: reads a HELO (missing keys default as out_forward's `check_helo`).
pub fn decode_helo(msg: &[u8]) -> Result<Helo, HandshakeError> {
    let bad = || HandshakeError("received invalid helo message".into());
    let mut rd = msg;
    let Ok(Value::Array(a)) = rmpv::decode::read_value(&mut rd) else {
        return Err(bad());
    };
    if a.len() != 2 || bytes_of(&a[0]) != Some(b"HELO") {
        return Err(bad());
    }
    let field = |k: &str| crate::value::get(&a[1], k);
    Ok(Helo {
        nonce: field("nonce")
            .and_then(bytes_of)
            .unwrap_or_default()
            .to_vec(),
        auth: field("auth")
            .and_then(bytes_of)
            .unwrap_or_default()
            .to_vec(),
        keepalive: field("keepalive").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Client: the PING answering `helo`. `user` is required when the HELO has an
/// auth salt, as out_forward requires it.
pub fn encode_ping(
    client_hostname: &[u8],
    shared_key_salt: &[u8],
    shared_key: &[u8],
    helo: &Helo,
    user: Option<(&[u8], &[u8])>,
) -> Result<Vec<u8>, HandshakeError> {
    let digest = shared_key_digest(shared_key_salt, client_hostname, &helo.nonce, shared_key);
    let mut out = Vec::with_capacity(300);
    let _ = mp::write_array_len(&mut out, 6);
    write_str(&mut out, b"PING");
    write_str(&mut out, client_hostname);
    write_str(&mut out, shared_key_salt);
    write_str(&mut out, digest.as_bytes());
    if helo.auth.is_empty() {
        write_str(&mut out, b"");
        write_str(&mut out, b"");
    } else {
        let (name, pass) =
            user.ok_or_else(|| HandshakeError("username and password are required".into()))?;
        write_str(&mut out, name);
        write_str(&mut out, password_digest(&helo.auth, name, pass).as_bytes());
    }
    Ok(out)
}

/// Client: checks the PONG as out_forward's `check_pong`; returns the server
/// hostname.
pub fn check_pong(
    msg: &[u8],
    client_hostname: &[u8],
    shared_key_salt: &[u8],
    shared_key: &[u8],
    nonce: &[u8],
) -> Result<Vec<u8>, HandshakeError> {
    let err = |s: &str| Err(HandshakeError(s.into()));
    let mut rd = msg;
    let a = match rmpv::decode::read_value(&mut rd) {
        Ok(Value::Array(a)) if a.len() == 5 && bytes_of(&a[0]) == Some(b"PONG") => a,
        _ => return err("invalid format for PONG message"),
    };
    if a[1].as_bool() != Some(true) {
        let reason = crate::value::text_of(&a[2]).unwrap_or_default();
        return Err(HandshakeError(format!("authentication failed: {reason}")));
    }
    let host = bytes_of(&a[3]).unwrap_or_default();
    if host == client_hostname {
        return err("same hostname between input and output: invalid configuration");
    }
    let want = shared_key_digest(shared_key_salt, host, nonce, shared_key);
    if !same(bytes_of(&a[4]).unwrap_or_default(), want.as_bytes()) {
        return err("shared key mismatch");
    }
    Ok(host.to_vec())
}
