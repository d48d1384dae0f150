//! A real HTTP back end for REST hook tests: an axum server on 127.0.0.1 that records every call
//! (path, headers, JSON body) and answers by rules the test sets: allow (echo), refuse with a
//! status and an optional `{status, reason}` body, answer with a changed body, or stall.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One call the back end received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The hook (last path segment).
    pub method: String,
    /// `Authorization`, when sent.
    pub authorization: Option<String>,
    /// The raw body.
    pub raw: Vec<u8>,
    /// The body as JSON.
    pub body: Value,
}

/// How to answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with the body echoed.
    Echo,
    /// 200 with this body.
    Json(Value),
    /// This status, with this body.
    Status(u16, String),
    /// No answer for this long, then echo.
    Stall(Duration),
}

type Rule = Box<dyn Fn(&str, &Value) -> Option<Answer> + Send + Sync>;

#[derive(Clone, Default)]
struct Shared {
    calls: Arc<Mutex<Vec<Call>>>,
    rules: Arc<Mutex<Vec<Rule>>>,
}

/// The running back end.
pub struct Backend {
    /// Its base URL (`http://127.0.0.1:PORT/app`).
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(s): State<Shared>, uri: Uri, headers: HeaderMap, bytes: Bytes) -> Response {
    let method = uri.path().rsplit('/').next().unwrap_or("").to_owned();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    s.calls.lock().unwrap().push(Call {
        method: method.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        raw: bytes.to_vec(),
        body: body.clone(),
    });
    let answer = s
        .rules
        .lock()
        .unwrap()
        .iter()
        .find_map(|r| r(&method, &body))
        .unwrap_or(Answer::Echo);
    match answer {
        Answer::Echo => axum::Json(body).into_response(),
        Answer::Json(v) => axum::Json(v).into_response(),
        Answer::Status(code, text) => (
            StatusCode::from_u16(code).unwrap(),
            [("content-type", "application/json")],
            text,
        )
            .into_response(),
        Answer::Stall(d) => {
            tokio::time::sleep(d).await;
            axum::Json(body).into_response()
        }
    }
}

impl Backend {
    /// Starts a back end that echoes everything until rules say otherwise.
    pub async fn start() -> Backend {
        let shared = Shared::default();
        let app = axum::Router::new()
            .fallback(axum::routing::post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Backend {
            url: format!("http://{addr}/app"),
            shared,
            task,
        }
    }

    /// Adds a rule, asked before the ones added earlier are not: first match wins, in order added.
    pub fn rule(&self, f: impl Fn(&str, &Value) -> Option<Answer> + Send + Sync + 'static) {
        self.shared.rules.lock().unwrap().push(Box::new(f));
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The calls to one hook.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }
}
