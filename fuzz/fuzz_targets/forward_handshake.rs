//! The `<security>` handshake, server and client side. Arbitrary bytes as a
//! PING must fail cleanly (and a second PING after any first one must fail);
//! arbitrary bytes as a HELO or PONG must not panic the client; and a client
//! that follows the protocol with fuzzer-chosen hostnames, salts, keys and
//! users is accepted exactly when its shared key and password are right, and
//! then accepts the server's PONG.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use logport_forward::handshake::{check_pong, decode_helo, encode_ping};
use logport_forward::{Handshake, HandshakeState, User};

#[derive(Arbitrary, Debug)]
struct Input {
    raw_ping: Vec<u8>,
    raw_helo: Vec<u8>,
    raw_pong: Vec<u8>,
    server_host: Vec<u8>,
    client_host: Vec<u8>,
    key: Vec<u8>,
    client_key: Vec<u8>,
    salt: Vec<u8>,
    nonce: [u8; 16],
    auth_salt: Vec<u8>,
    users: Vec<(Vec<u8>, Vec<u8>)>,
    login: Option<(Vec<u8>, Vec<u8>)>,
}

fuzz_target!(|input: Input| {
    let users: Vec<User> = input
        .users
        .iter()
        .map(|(u, p)| User {
            username: u.clone(),
            password: p.clone(),
        })
        .collect();
    let server = || {
        Handshake::new(
            &input.server_host,
            &input.key,
            users.clone(),
            &input.nonce,
            &input.auth_salt,
        )
    };

    let mut hs = server();
    let pong = hs.on_ping(&input.raw_ping);
    assert_eq!(hs.state() == HandshakeState::Established, pong.ok);
    let second = hs.on_ping(&input.raw_ping);
    assert!(!second.ok, "a second PING is never accepted");
    let _ = decode_helo(&input.raw_helo);
    let _ = check_pong(
        &input.raw_pong,
        &input.client_host,
        &input.salt,
        &input.key,
        &input.nonce,
    );

    let mut hs = server();
    let helo = decode_helo(&hs.helo()).expect("own HELO decodes");
    assert_eq!(helo.nonce, input.nonce);
    assert_eq!(helo.auth, input.auth_salt);
    let login = input.login.as_ref().map(|(u, p)| (&u[..], &p[..]));
    let Ok(ping) = encode_ping(
        &input.client_host,
        &input.salt,
        &input.client_key,
        &helo,
        login,
    ) else {
        // Only refused when the HELO asks for a user and none was given.
        assert!(!helo.auth.is_empty() && login.is_none());
        return;
    };
    let pong = hs.on_ping(&ping);
    // With users but no auth salt in the HELO the client sends no password,
    // so no user can match.
    let user_ok = users.is_empty()
        || !helo.auth.is_empty()
            && login.is_some_and(|(u, p)| users.iter().any(|x| x.username == u && x.password == p));
    assert_eq!(
        pong.ok,
        input.key == input.client_key && user_ok,
        "{}",
        pong.reason
    );
    if pong.ok {
        let checked = check_pong(
            &pong.reply,
            &input.client_host,
            &input.salt,
            &input.client_key,
            &input.nonce,
        );
        if input.server_host == input.client_host {
            // out_forward refuses to talk to itself; so does check_pong.
            assert!(checked.is_err());
        } else {
            assert_eq!(
                checked.expect("the server's PONG checks out"),
                input.server_host
            );
        }
    }
});
