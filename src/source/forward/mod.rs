//! The forward source (being written).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::ListenerConfig;
use crate::source::{SpawnContext, Spawned};

/// `[listener.forward]`: options only the forward protocol has.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardOptions {}

pub fn check_app_fields(_fields: &[String]) -> Result<(), String> {
    Ok(())
}

pub fn check_listener(_listener: &ListenerConfig) -> Result<(), (Vec<&'static str>, String)> {
    Err((
        vec!["protocol"],
        "the forward input is not available yet".into(),
    ))
}

pub fn spawn(
    _listener: &ListenerConfig,
    _name: Arc<str>,
    _context: SpawnContext<'_>,
) -> anyhow::Result<Spawned> {
    anyhow::bail!("the forward input is not available yet")
}
