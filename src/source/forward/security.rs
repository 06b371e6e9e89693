//! in_forward's `<security>`: a shared key and optional users, checked by the HELO/PING/PONG
//! handshake at the start of every connection.

use logport_forward::{Handshake, User};

use super::options::ForwardOptions;

pub struct Security {
    hostname: Vec<u8>,
    shared_key: Vec<u8>,
    users: Vec<User>,
    keepalive: bool,
}

/// in_forward's nonce and salt are 16 random bytes each.
const RANDOM_LEN: usize = 16;

impl Security {
    /// None when the listener has no `shared_key` (no handshake).
    pub fn from_options(options: &ForwardOptions) -> Option<Security> {
        let key = options.shared_key.as_ref()?;
        Some(Security {
            hostname: options
                .self_hostname
                .clone()
                .unwrap_or_else(this_hostname)
                .into_bytes(),
            shared_key: key.clone().into_bytes(),
            users: options
                .users
                .iter()
                .map(|u| User {
                    username: u.username.clone().into_bytes(),
                    password: u.password.clone().into_bytes(),
                })
                .collect(),
            keepalive: !options.deny_keepalive,
        })
    }

    /// A handshake with a fresh nonce (and auth salt when users are configured). The nonce is
    /// what keeps a recorded PING from being replayed, so it comes from the OS CSPRNG, through
    /// the ring provider rustls already links.
    pub fn start(&self) -> Result<Handshake, String> {
        let mut nonce = [0u8; RANDOM_LEN];
        let mut salt = [0u8; RANDOM_LEN];
        let random = rustls::crypto::ring::default_provider().secure_random;
        random
            .fill(&mut nonce)
            .and_then(|()| random.fill(&mut salt))
            .map_err(|_| "the system's random source failed".to_owned())?;
        // Without users the HELO advertises no auth salt, so clients send no username.
        let salt: &[u8] = if self.users.is_empty() { &[] } else { &salt };
        Ok(Handshake::new(
            &self.hostname,
            &self.shared_key,
            self.users.clone(),
            &nonce,
            salt,
        )
        .with_keepalive(self.keepalive))
    }
}

/// in_forward's default `self_hostname` is the machine's name.
fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "logport".to_owned())
}

/// The PONG reason as a metric label.
pub fn reason_label(reason: &str) -> &'static str {
    match reason {
        logport_forward::handshake::REASON_SHARED_KEY_MISMATCH => "shared_key_mismatch",
        logport_forward::handshake::REASON_USER_MISMATCH => "user_mismatch",
        _ => "invalid_ping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::forward::options::ForwardUser;
    use logport_forward::handshake::{check_pong, decode_helo, encode_ping};

    fn security(users: Vec<ForwardUser>) -> Security {
        Security::from_options(&ForwardOptions {
            shared_key: Some("k3y".into()),
            self_hostname: Some("gateway".into()),
            users,
            ..ForwardOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn each_connection_gets_a_fresh_nonce_and_a_client_with_the_key_gets_in() {
        let sec = security(Vec::new());
        let a = decode_helo(&sec.start().unwrap().helo()).unwrap();
        let b = decode_helo(&sec.start().unwrap().helo()).unwrap();
        assert_eq!(a.nonce.len(), 16);
        assert_ne!(a.nonce, b.nonce);
        assert!(a.auth.is_empty(), "no users: no auth salt");
        assert!(a.keepalive);

        let mut hs = sec.start().unwrap();
        let helo = decode_helo(&hs.helo()).unwrap();
        let ping = encode_ping(b"client", b"salt", b"k3y", &helo, None).unwrap();
        let pong = hs.on_ping(&ping);
        assert!(pong.ok, "{}", pong.reason);
        assert_eq!(
            check_pong(&pong.reply, b"client", b"salt", b"k3y", &helo.nonce).unwrap(),
            b"gateway"
        );

        let mut hs = sec.start().unwrap();
        let helo = decode_helo(&hs.helo()).unwrap();
        let ping = encode_ping(b"client", b"salt", b"wrong", &helo, None).unwrap();
        let pong = hs.on_ping(&ping);
        assert!(!pong.ok);
        assert_eq!(reason_label(&pong.reason), "shared_key_mismatch");
    }

    #[test]
    fn users_need_the_right_password() {
        let sec = security(vec![ForwardUser {
            username: "alice".into(),
            password: "pw".into(),
        }]);
        for (pass, ok) in [(&b"pw"[..], true), (b"nope", false)] {
            let mut hs = sec.start().unwrap();
            let helo = decode_helo(&hs.helo()).unwrap();
            assert_eq!(helo.auth.len(), 16);
            let ping = encode_ping(b"c", b"s", b"k3y", &helo, Some((b"alice", pass))).unwrap();
            let pong = hs.on_ping(&ping);
            assert_eq!(pong.ok, ok);
            if !ok {
                assert_eq!(reason_label(&pong.reason), "user_mismatch");
            }
        }
    }
}
