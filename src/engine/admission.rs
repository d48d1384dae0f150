//! The one point every publish and play passes through, whatever the protocol ([`Admission`]), and
//! the resolvers that make a stream on demand when a name is asked for that nobody publishes yet
//! ([`Resolver`]). Hooks and tokens decide admission; transcoded profiles, files and CDN pulls
//! resolve names. The defaults admit everyone and resolve nothing ("Stream not found").

use super::{Engine, EngineError};
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// A boxed future, as the traits here return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Publish or play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// A source wants to publish a stream.
    Publish,
    /// A viewer wants to play one.
    Play,
}

/// What admission is asked to decide: the request as every protocol describes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Publish or play.
    pub action: Action,
    /// Stream name.
    pub name: String,
    /// The media session.
    pub media_session_id: String,
    /// The owning connection or job.
    pub session_id: String,
    /// The client's application key.
    pub app_key: String,
    /// `WebRTC`, `RTMP`, …
    pub provider: &'static str,
    /// The client's address, when it has one.
    pub client: Option<IpAddr>,
    /// What the client sent along (`custom`, URL query parameters).
    pub custom: Value,
    /// The publisher asks for recording.
    pub record: bool,
    /// The client's SDP offer, when it sent one.
    pub sdp: String,
    /// The client's login, when it has one.
    pub login: String,
}

/// What admission lets through: the request as asked, or with what the deciding party changed (a
/// back end renaming the stream, turning recording on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admitted {
    /// The stream's name from now on, when it changed.
    pub name: Option<String>,
    /// Recording on or off, when decided.
    pub record: Option<bool>,
}

/// Several admission steps, each seeing what the ones before it let through (tokens, then hooks).
pub struct Chain(pub Vec<std::sync::Arc<dyn Admission>>);

impl Admission for Chain {
    fn admit(&self, mut req: AdmissionRequest) -> BoxFuture<Result<Admitted, EngineError>> {
        let steps = self.0.clone();
        Box::pin(async move {
            let mut out = Admitted::default();
            for step in steps {
                let a = step.admit(req.clone()).await?;
                if let Some(n) = a.name {
                    req.name = n.clone();
                    out.name = Some(n);
                }
                if let Some(r) = a.record {
                    req.record = r;
                    out.record = Some(r);
                }
            }
            Ok(out)
        })
    }
}

/// Decides whether a publish or play may go ahead. An error is the answer the client gets
/// (`EngineError::Denied` with the reason for a refusal).
pub trait Admission: Send + Sync + 'static {
    /// Decides on one request.
    fn admit(&self, req: AdmissionRequest) -> BoxFuture<Result<Admitted, EngineError>>;
}

/// Admits everyone.
pub struct AdmitAll;

impl Admission for AdmitAll {
    fn admit(&self, _req: AdmissionRequest) -> BoxFuture<Result<Admitted, EngineError>> {
        Box::pin(async { Ok(Admitted::default()) })
    }
}

/// Makes a stream when a name nobody publishes is asked for (`name-360p`, `vod://file.mp4`, a CDN
/// pull). `resolve` answers `None` for names it does not know; otherwise the future publishes the
/// stream (as a job of the engine) and resolves once it can be played, or fails.
pub trait Resolver: Send + Sync + 'static {
    /// Claims `name`, or not.
    fn resolve(&self, engine: &Engine, name: &str) -> Option<BoxFuture<Result<(), EngineError>>>;
}
