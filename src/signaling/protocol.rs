//! WCS's WebSocket signaling messages: text frames `{"message": NAME, "data": [ARG, ...]}`. Parsing
//! turns a frame into an [`Incoming`] or a precise error; builders make the server's frames. No I/O.

use serde::Deserialize;
use serde_json::{json, Value};

/// A client message the server understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Session handshake (`connection`): the client's connection object.
    Connection(Value),
    /// Publish with an offer.
    PublishStream(StreamRequest),
    /// Play with an offer.
    PlayStream(StreamRequest),
    /// Stop publishing.
    UnPublishStream(StreamRef),
    /// Stop playing.
    StopStream(StreamRef),
    /// A publisher's event for its subscribers.
    SendStreamEvent {
        /// The publisher's media session.
        media_session_id: String,
        /// Event type.
        kind: String,
        /// Event payload.
        payload: Value,
    },
    /// Data for the back end.
    SendData {
        /// Client's id for the reply.
        operation_id: String,
        /// The data.
        payload: Value,
    },
    /// A snapshot of a stream's current picture (`snapshot {name, mediaSessionId}`).
    Snapshot(StreamRef),
    /// Keep-alive from the client.
    Ping,
    /// Answer to the server's ping.
    Pong,
    /// `connectMediaTransport {authToken}`: this socket is the media transport of the connection
    /// with that token (MSE players).
    ConnectMediaTransport(String),
    /// `availableStream {mediaSessionId, name}`: can this stream be played?
    AvailableStream(Value),
    /// Logs, bug reports and debug switches the SDK sends: accepted without an answer.
    Quiet,
    /// A known WCS message this server does not implement (SIP calls).
    Unsupported(String),
}

/// `publishStream` / `playStream` arguments.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRequest {
    /// Client-chosen media session id.
    #[serde(default)]
    pub media_session_id: String,
    /// Stream name.
    #[serde(default)]
    pub name: String,
    /// SDP offer.
    #[serde(default)]
    pub sdp: String,
    /// Record the stream.
    #[serde(default)]
    pub record: bool,
    /// Client data passed to hooks.
    #[serde(default)]
    pub custom: Value,
    /// `WebRTC` (the default) or `MSE`.
    #[serde(default)]
    pub media_provider: String,
}

/// `unPublishStream` / `stopStream` arguments.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRef {
    /// The media session.
    #[serde(default)]
    pub media_session_id: String,
    /// Stream name.
    #[serde(default)]
    pub name: String,
}

/// Why a frame was refused; the text goes to the client in a `fail` message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// Not JSON.
    #[error("Malformed JSON: {0}")]
    Json(String),
    /// JSON, but not `{"message": ..., "data": [...]}`.
    #[error("Malformed message: {0}")]
    Shape(String),
    /// A message name the server does not know.
    #[error("Unknown message {0:?}")]
    Unknown(String),
    /// A known message with bad arguments.
    #[error("Bad arguments for {message}: {reason}")]
    Arguments {
        /// The message.
        message: String,
        /// What is wrong.
        reason: String,
    },
}

impl ProtocolError {
    /// The message name the error is about, for `fail.apiMethod`.
    pub fn api_method(&self) -> Option<&str> {
        match self {
            ProtocolError::Unknown(m) => Some(m),
            ProtocolError::Arguments { message, .. } => Some(message),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Frame {
    message: String,
    #[serde(default)]
    data: Value,
}

fn arg<T: for<'de> Deserialize<'de>>(message: &str, data: &Value) -> Result<T, ProtocolError> {
    let first = match data {
        Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    serde_json::from_value(first).map_err(|e| ProtocolError::Arguments {
        message: message.to_owned(),
        reason: e.to_string(),
    })
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Incoming, ProtocolError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ProtocolError::Json(e.to_string()))?;
    let frame: Frame =
        serde_json::from_value(value).map_err(|e| ProtocolError::Shape(e.to_string()))?;
    let m = frame.message.as_str();
    let data = &frame.data;
    Ok(match m {
        "connection" => {
            let v: Value = arg(m, data)?;
            if !v.is_object() {
                return Err(ProtocolError::Arguments {
                    message: m.into(),
                    reason: "expected an object".into(),
                });
            }
            Incoming::Connection(v)
        }
        "publishStream" => Incoming::PublishStream(arg(m, data)?),
        "playStream" => Incoming::PlayStream(arg(m, data)?),
        "unPublishStream" => Incoming::UnPublishStream(arg(m, data)?),
        "stopStream" => Incoming::StopStream(arg(m, data)?),
        "sendStreamEvent" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct E {
                #[serde(default)]
                media_session_id: String,
                #[serde(rename = "type")]
                kind: String,
                #[serde(default)]
                payload: Value,
            }
            let e: E = arg(m, data)?;
            Incoming::SendStreamEvent {
                media_session_id: e.media_session_id,
                kind: e.kind,
                payload: e.payload,
            }
        }
        "sendData" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct D {
                operation_id: String,
                #[serde(default)]
                payload: Value,
            }
            let d: D = arg(m, data)?;
            Incoming::SendData {
                operation_id: d.operation_id,
                payload: d.payload,
            }
        }
        "ping" => Incoming::Ping,
        "pong" => Incoming::Pong,
        "snapshot" => Incoming::Snapshot(arg(m, data)?),
        "availableStream" => Incoming::AvailableStream(arg(m, data)?),
        "connectMediaTransport" => {
            let v: Value = arg(m, data)?;
            Incoming::ConnectMediaTransport(
                v.get("authToken")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            )
        }
        "submitBugReport" | "sessionDebug" | "pushLogs" => Incoming::Quiet,
        "call" | "answer" | "hangup" | "hold" | "unhold" | "sendDtmf" | "transfer" => {
            Incoming::Unsupported(m.to_owned())
        }
        other => return Err(ProtocolError::Unknown(other.to_owned())),
    })
}

/// A server frame: `{"message": name, "data": [arg]}`.
pub fn frame(message: &str, data: Value) -> String {
    json!({ "message": message, "data": [data] }).to_string()
}

/// A `sendData` refused: `DataStatusEvent` FAILED with the reason.
pub fn fail_data(operation_id: &str, info: &str) -> String {
    frame(
        "DataStatusEvent",
        json!({ "operationId": operation_id, "status": "FAILED", "info": info }),
    )
}

/// `setRemoteSDP` carries two arguments: the media session id and the answer.
pub fn set_remote_sdp(media_session_id: &str, sdp: &str) -> String {
    json!({ "message": "setRemoteSDP", "data": [media_session_id, sdp] }).to_string()
}

/// A `fail` frame for a refused message.
pub fn fail(info: &str, api_method: Option<&str>) -> String {
    let mut v = json!({ "status": "FAILED", "info": info });
    if let Some(m) = api_method {
        v["apiMethod"] = Value::String(m.to_owned());
    }
    frame("fail", v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sdk_messages() {
        let p = parse(r#"{"message":"publishStream","data":[{"mediaSessionId":"a","name":"s","sdp":"v=0","record":true,"custom":{"k":1},"extra":5}]}"#).unwrap();
        match p {
            Incoming::PublishStream(r) => {
                assert_eq!(r.media_session_id, "a");
                assert_eq!(r.name, "s");
                assert!(r.record);
                assert_eq!(r.custom["k"], 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(r#"{"message":"pong","data":[null]}"#).unwrap(),
            Incoming::Pong
        );
        assert!(matches!(
            parse(r#"{"message":"sendStreamEvent","data":[{"mediaSessionId":"a","type":"audioMuted","payload":{}}]}"#).unwrap(),
            Incoming::SendStreamEvent { kind, .. } if kind == "audioMuted"
        ));
    }

    #[test]
    fn refuses_bad_frames_precisely() {
        assert!(matches!(parse("{not json"), Err(ProtocolError::Json(_))));
        assert!(matches!(parse("[1,2]"), Err(ProtocolError::Shape(_))));
        assert_eq!(
            parse(r#"{"message":"launchRocket","data":[{}]}"#),
            Err(ProtocolError::Unknown("launchRocket".into()))
        );
        let e = parse(r#"{"message":"sendData","data":[{"payload":1}]}"#).unwrap_err();
        assert_eq!(e.api_method(), Some("sendData"));
        assert!(matches!(
            parse(r#"{"message":"connection","data":[5]}"#),
            Err(ProtocolError::Arguments { .. })
        ));
    }

    #[test]
    fn builds_frames() {
        let v: Value = serde_json::from_str(&set_remote_sdp("id", "v=0")).unwrap();
        assert_eq!(v["data"][0], "id");
        assert_eq!(v["data"][1], "v=0");
        let f: Value = serde_json::from_str(&fail("x", Some("m"))).unwrap();
        assert_eq!(f["message"], "fail");
        assert_eq!(f["data"][0]["apiMethod"], "m");
    }
}
