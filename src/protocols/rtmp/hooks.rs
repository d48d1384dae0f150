//! An RTMP connection as the back end sees it: the `connect` hook of application
//! `flashStreamingApp` (the connect URL's query parameters as `custom`, `login` among them, as WCS
//! fills them for RTMP encoders) and its `ConnectionStatusEvent`s.

use crate::server::AppState;
use crate::signaling::access::Who;
use serde_json::json;
use std::net::SocketAddr;

/// The application key of RTMP clients.
pub const APP_KEY: &str = "flashStreamingApp";

/// The connect decision; `Err` is the reason the client is refused with.
pub async fn connect(
    state: &AppState,
    session_id: &str,
    peer: SocketAddr,
    query: &str,
) -> Result<(), String> {
    let params = super::query_params(query);
    let body = json!({
        "nodeId": state.node_id,
        "appKey": APP_KEY,
        "sessionId": session_id,
        "mediaProviders": ["Flash"],
        "login": params.get("login").cloned().unwrap_or_else(|| json!("")),
        "custom": params,
        "origin": peer.to_string(),
    });
    let login = body["login"].as_str().unwrap_or("").to_owned();
    state.hooks.connect(session_id, APP_KEY, body).await?;
    let who = Who {
        session_id,
        app_key: APP_KEY,
        login: &login,
        client: peer.to_string(),
    };
    crate::signaling::access::connection_event(state, &who, "ESTABLISHED", None);
    Ok(())
}

/// Tells the back end the connection ended, when it was established, and forgets it.
pub struct Connected {
    /// The server's state.
    pub state: AppState,
    /// The connection.
    pub session_id: String,
}

impl Drop for Connected {
    fn drop(&mut self) {
        let who = Who {
            session_id: &self.session_id,
            app_key: APP_KEY,
            login: "",
            client: String::new(),
        };
        crate::signaling::access::connection_event(&self.state, &who, "DISCONNECTED", None);
        crate::signaling::access::forget(&self.state, &self.session_id);
    }
}
