//! Logic tests: config checks and event shapes (sockets are in tests/forward.rs).
