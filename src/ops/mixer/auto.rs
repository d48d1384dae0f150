//! MCU mode (`mixer.auto`): publishing a stream named `login#room` adds it to the mixer `room`,
//! made on first use with the configured defaults (its output stream is `room`), and each such
//! participant gets a minus-one stream `room-<login>room`. The mixer ends after its last input
//! leaves (see [`super::Mixer::remove`]).

use super::{find, start, MixerSpec};
use crate::engine::{Engine, EngineEvent};

/// `login#room` split in two; `None` for any other name.
pub fn participant(stream: &str) -> Option<(&str, &str)> {
    let (login, room) = stream.split_once('#')?;
    (!login.is_empty() && !room.is_empty() && !room.contains('#')).then_some((login, room))
}

/// Follows the engine's events for as long as it runs.
pub fn spawn(engine: &Engine) {
    let weak = engine.downgrade();
    let mut events = engine.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("MCU: missed {n} engine events");
                    continue;
                }
                Err(_) => break,
            };
            let EngineEvent::Published { name, provider, .. } = ev else {
                continue;
            };
            // Our own outputs (a mixer's, a minus-one) are never participants.
            if provider == "Mixer" {
                continue;
            }
            let Some(engine) = weak.upgrade() else { break };
            if let Some((login, room)) = participant(&name) {
                let (login, room) = (login.to_owned(), room.to_owned());
                if let Err(e) = join(&engine, &name, &login, &room).await {
                    tracing::warn!(stream = %crate::redact::Escaped(&name), "MCU: could not add the stream to mixer {room}: {e}");
                }
            }
        }
    });
}

async fn join(engine: &Engine, stream: &str, login: &str, room: &str) -> anyhow::Result<()> {
    let mixer = match find(engine, room) {
        Some(m) => m,
        None => {
            let spec = MixerSpec::defaults(&engine.config().mixer, room, true)?;
            match start(engine, spec).await {
                Ok(m) => m,
                // Two participants at once: the other one made it.
                Err(super::MixerError::Exists) => {
                    find(engine, room).ok_or_else(|| anyhow::anyhow!("mixer vanished"))?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let (stream, login) = (stream.to_owned(), login.to_owned());
    tokio::task::spawn_blocking(move || mixer.add(&stream, &login, true, true)).await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::participant;

    #[test]
    fn participants_are_login_hash_room() {
        assert_eq!(participant("alice#room1"), Some(("alice", "room1")));
        assert_eq!(participant("alice"), None);
        assert_eq!(participant("#room"), None);
        assert_eq!(participant("alice#"), None);
        assert_eq!(participant("a#b#c"), None);
    }
}
