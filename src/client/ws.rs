//! The signaling half of the client: a WebSocket speaking WCS's frames, answering the server's
//! pings, and keeping frames that arrive while the caller waits for something else.

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A signaling connection. A background task reads the socket and answers the server's pings, so
/// the connection stays alive while the caller is busy elsewhere.
pub struct WcsConnection {
    out: mpsc::Sender<Message>,
    frames: mpsc::Receiver<anyhow::Result<Value>>,
    backlog: VecDeque<Value>,
    reader: tokio::task::JoinHandle<()>,
    /// The server's `getUserData` object.
    pub user_data: Value,
}

impl Drop for WcsConnection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl WcsConnection {
    /// Opens the socket without the `connection` handshake.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::channel::<Message>(64);
        let (frames_tx, frames) = mpsc::channel(1024);
        let pong_tx = out.clone();
        let reader = tokio::spawn(async move {
            let writer = async move {
                while let Some(m) = out_rx.recv().await {
                    let close = matches!(m, Message::Close(_));
                    if sink.send(m).await.is_err() || close {
                        break;
                    }
                }
            };
            let read = async move {
                while let Some(msg) = stream.next().await {
                    let item = match msg {
                        Err(e) => Err(anyhow::anyhow!("socket error: {e}")),
                        Ok(Message::Text(t)) => match serde_json::from_str::<Value>(t.as_str()) {
                            Ok(v) if v["message"] == "ping" => {
                                let pong = json!({"message": "pong", "data": [null]}).to_string();
                                let _ = pong_tx.send(Message::Text(pong.into())).await;
                                continue;
                            }
                            Ok(v) => Ok(v),
                            Err(e) => Err(anyhow::anyhow!("server sent invalid JSON: {e}")),
                        },
                        Ok(Message::Close(_)) => break,
                        Ok(_) => continue,
                    };
                    if frames_tx.send(item).await.is_err() {
                        break;
                    }
                }
                let _ = frames_tx
                    .send(Err(anyhow::anyhow!("server closed the connection")))
                    .await;
            };
            tokio::join!(writer, read);
        });
        Ok(Self {
            out,
            frames,
            backlog: VecDeque::new(),
            reader,
            user_data: Value::Null,
        })
    }

    /// Opens the socket and completes the handshake.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, "defaultApp", Value::Null).await
    }

    /// Opens the socket and completes the handshake for application `app_key` with a `custom`
    /// object (a login, a token). A refusal is an error carrying the server's `info`.
    pub async fn connect_with(url: &str, app_key: &str, custom: Value) -> anyhow::Result<Self> {
        let mut c = Self::open(url).await?;
        let mut obj = json!({"appKey": app_key, "mediaProviders": ["WebRTC"], "keepAlive": false,
                   "clientVersion": "2.0", "clientOSVersion": "streamgate-client", "clientBrowserVersion": "gstreamer"});
        if !custom.is_null() {
            obj["custom"] = custom;
        }
        c.send("connection", obj).await?;
        let ud = c
            .wait(Duration::from_secs(20), |f| {
                f["message"] == "getUserData"
                    || (f["message"] == "fail"
                        && f["data"][0]["apiMethod"] == "ConnectionStatusEvent")
            })
            .await?;
        if ud["message"] == "fail" {
            anyhow::bail!(
                "connection refused: {}",
                ud["data"][0]["info"].as_str().unwrap_or("")
            );
        }
        c.user_data = ud["data"][0].clone();
        Ok(c)
    }

    /// The server-assigned session id.
    pub fn session_id(&self) -> &str {
        self.user_data["sessionId"].as_str().unwrap_or("")
    }

    /// Sends `{"message": message, "data": [data]}`.
    pub async fn send(&mut self, message: &str, data: Value) -> anyhow::Result<()> {
        self.send_raw(&json!({"message": message, "data": [data]}).to_string())
            .await
    }

    /// Sends any text frame.
    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.out
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| anyhow::anyhow!("connection closed"))
    }

    /// Closes the socket.
    pub async fn close(self) {
        let _ = self.out.send(Message::Close(None)).await;
    }

    async fn read(&mut self, deadline: Instant) -> anyhow::Result<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.frames.recv()).await {
            Err(_) => bail!("timed out waiting for the server"),
            Ok(None) => bail!("server closed the connection"),
            Ok(Some(r)) => r,
        }
    }

    /// Waits for a frame matching `pred`; other frames are kept for later waits.
    pub async fn wait(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        if let Some(pos) = self.backlog.iter().position(&pred) {
            return Ok(self.backlog.remove(pos).unwrap_or(Value::Null));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.read(deadline).await?;
            if pred(&v) {
                return Ok(v);
            }
            self.backlog.push_back(v);
        }
    }

    /// Waits for the next frame whatever it is (backlog first).
    pub async fn next_frame(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        self.wait(timeout, |_| true).await
    }

    /// Waits for the answer to an offer; a FAILED status for that media session is an error.
    pub async fn wait_answer(&mut self, msid: &str, timeout: Duration) -> anyhow::Result<String> {
        let f = self
            .wait(timeout, |f| {
                (f["message"] == "setRemoteSDP" && f["data"][0] == msid)
                    || (f["message"] == "notifyStreamStatusEvent"
                        && f["data"][0]["mediaSessionId"] == msid)
            })
            .await?;
        if f["message"] == "setRemoteSDP" {
            return Ok(f["data"][1].as_str().unwrap_or("").to_owned());
        }
        bail!(
            "{} {}",
            f["data"][0]["status"].as_str().unwrap_or("?"),
            f["data"][0]["info"].as_str().unwrap_or("")
        )
    }

    /// Waits for a status event of a media session and returns its object.
    pub async fn wait_status(&mut self, msid: &str, timeout: Duration) -> anyhow::Result<Value> {
        let f = self
            .wait(timeout, |f| {
                f["message"] == "notifyStreamStatusEvent" && f["data"][0]["mediaSessionId"] == msid
            })
            .await?;
        Ok(f["data"][0].clone())
    }
}
