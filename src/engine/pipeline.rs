//! Pipeline ownership: every pipeline lives in a [`PipelineGuard`] whose drop takes it to NULL on the
//! reaper thread (never on a tokio worker: `set_state(Null)` can block while streaming threads join),
//! counts it, and reports bus errors to the owner. All pipelines share one clock and one base time, so
//! running times mean the same everywhere and buffers can move from one pipeline to another as they are.

use gst::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// Counts pipelines alive (built and not yet back at NULL). Each engine has its own, so several
/// servers in one process (tests) count separately; a global one counts everything.
#[derive(Clone, Default)]
pub struct PipelineCounter(Arc<AtomicUsize>);

impl PipelineCounter {
    /// Pipelines alive now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The reaper thread's inbox. Unbounded on purpose: a guard's drop must never block or fail, and each
/// entry is one pipeline that already exists, so the queue is bounded by the pipelines themselves.
static REAPER: OnceLock<Mutex<mpsc::Sender<Reap>>> = OnceLock::new();

enum Reap {
    Pipeline(gst::Pipeline, PipelineCounter),
    Flush(std::sync::mpsc::SyncSender<()>),
}

fn reaper() -> &'static Mutex<mpsc::Sender<Reap>> {
    REAPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Reap>();
        std::thread::Builder::new()
            .name("pipeline-reaper".into())
            .spawn(move || {
                for item in rx {
                    match item {
                        Reap::Pipeline(p, counter) => {
                            let name = p.name();
                            if let Err(e) = p.set_state(gst::State::Null) {
                                tracing::warn!(pipeline = %name, "could not stop pipeline: {e}");
                            }
                            drop(p);
                            counter.0.fetch_sub(1, Ordering::SeqCst);
                            tracing::debug!(pipeline = %name, "pipeline stopped");
                        }
                        Reap::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .expect("spawning the pipeline reaper thread");
        Mutex::new(tx)
    })
}

/// Waits until every pipeline handed to the reaper so far is at NULL (used at shutdown and in tests).
pub fn flush_reaper(timeout: std::time::Duration) -> bool {
    let (tx, rx) = mpsc::sync_channel(1);
    if let Ok(r) = reaper().lock() {
        if r.send(Reap::Flush(tx)).is_err() {
            return false;
        }
    }
    rx.recv_timeout(timeout).is_ok()
}

/// The clock and base time every pipeline uses.
pub struct SharedClock {
    clock: gst::Clock,
    base_time: gst::ClockTime,
}

static CLOCK: OnceLock<SharedClock> = OnceLock::new();

impl SharedClock {
    /// The clock itself.
    pub fn clock(&self) -> &gst::Clock {
        &self.clock
    }

    /// Puts `pipeline` (one made elsewhere, by gst-rtsp-server) on this clock and base time.
    pub fn adopt(&self, pipeline: &gst::Pipeline) {
        pipeline.use_clock(Some(&self.clock));
        pipeline.set_base_time(self.base_time);
        // Keep our base time: the pipeline must not pick a new one when it goes to PLAYING.
        pipeline.set_start_time(gst::ClockTime::NONE);
    }

    /// The current running time on the shared clock.
    pub fn now_running(&self) -> gst::ClockTime {
        self.clock.time().saturating_sub(self.base_time)
    }
}

/// The process-wide clock; its base time is fixed when first asked for.
pub fn shared_clock() -> &'static SharedClock {
    CLOCK.get_or_init(|| {
        let clock = gst::SystemClock::obtain();
        let base_time = clock.time();
        SharedClock { clock, base_time }
    })
}

/// An error a pipeline posted on its bus.
#[derive(Debug, Clone)]
pub struct BusError {
    /// The element's path in the pipeline.
    pub element: String,
    /// The error.
    pub error: gst::glib::Error,
    /// GStreamer's debug text, when there is some.
    pub debug: Option<String>,
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.element, self.error)
    }
}

/// Owns one pipeline: the only strong reference outside GStreamer's own.
pub struct PipelineGuard {
    pipeline: Option<gst::Pipeline>,
    counter: PipelineCounter,
    /// Ends the bus watch when the guard drops. The watch must not outlive the pipeline: each bus
    /// owns a socket pair, and a watch that waited on it for good would keep both fds forever.
    unwatch: Option<tokio::sync::oneshot::Sender<()>>,
}

impl PipelineGuard {
    /// Creates an empty pipeline named `name` on the shared clock.
    pub fn new(name: &str, counter: &PipelineCounter) -> Self {
        let pipeline = gst::Pipeline::builder().name(name).build();
        shared_clock().adopt(&pipeline);
        counter.0.fetch_add(1, Ordering::SeqCst);
        Self {
            pipeline: Some(pipeline),
            counter: counter.clone(),
            unwatch: None,
        }
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &gst::Pipeline {
        self.pipeline
            .as_ref()
            .expect("pipeline is present until drop")
    }

    /// Watches the bus on the tokio runtime: errors go to `on_error` (once), warnings to the log.
    pub fn watch_bus(&mut self, on_error: impl FnOnce(BusError) + Send + 'static) {
        let Some(bus) = self.pipeline().bus() else {
            return;
        };
        // The stream holds the bus weakly; the strong reference is dropped here so the bus (and its
        // socket pair) goes with the pipeline.
        let messages = bus.stream();
        drop(bus);
        self.watch_bus_stream(messages, false, on_error);
    }

    /// Like [`PipelineGuard::watch_bus`], on a bus stream the owner opened earlier (to read the
    /// first messages itself, e.g. while starting). With `answer_latency`, latency changes are
    /// answered by recalculating the pipeline's latency. The watch ends when the guard drops.
    pub fn watch_bus_stream(
        &mut self,
        mut messages: gst::bus::BusStream,
        answer_latency: bool,
        on_error: impl FnOnce(BusError) + Send + 'static,
    ) {
        let name = self.pipeline().name();
        let weak = self.pipeline().downgrade();
        let mut on_error = Some(on_error);
        let (unwatch, mut stop) = tokio::sync::oneshot::channel::<()>();
        self.unwatch = Some(unwatch);
        tokio::spawn(async move {
            use futures::StreamExt;
            loop {
                let msg = tokio::select! {
                    m = messages.next() => match m {
                        Some(m) => m,
                        None => break,
                    },
                    _ = &mut stop => break,
                };
                match msg.view() {
                    gst::MessageView::Error(err) => {
                        let error = BusError {
                            element: msg
                                .src()
                                .map(|s| s.path_string().to_string())
                                .unwrap_or_default(),
                            error: err.error(),
                            debug: err.debug().map(|d| d.to_string()),
                        };
                        tracing::warn!(pipeline = %name, element = %error.element, debug = ?error.debug, "pipeline error: {}", error.error);
                        if let Some(f) = on_error.take() {
                            f(error);
                        }
                    }
                    gst::MessageView::Latency(_) if answer_latency => {
                        if let Some(p) = weak.upgrade() {
                            p.call_async(|p| {
                                let _ = p.recalculate_latency();
                            });
                        }
                    }
                    gst::MessageView::Warning(w) => {
                        tracing::debug!(pipeline = %name, "pipeline warning: {}", w.error());
                    }
                    _ => {}
                }
            }
        });
    }
}

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        self.unwatch.take();
        let Some(p) = self.pipeline.take() else {
            return;
        };
        let item = Reap::Pipeline(p, self.counter.clone());
        let unsent = match reaper().lock() {
            Ok(r) => r.send(item).err().map(|e| e.0),
            Err(_) => Some(item),
        };
        if let Some(Reap::Pipeline(p, counter)) = unsent {
            // The reaper is gone (process exit): stop it here.
            let _ = p.set_state(gst::State::Null);
            counter.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Adds `chain` to `pipeline`, links it in order, starts it and feeds it from `pad` (a demuxer's or
/// webrtcbin's new pad).
pub fn attach_chain(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    chain: &[gst::Element],
) -> anyhow::Result<()> {
    let first = chain
        .first()
        .ok_or_else(|| anyhow::anyhow!("empty chain"))?;
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain)?;
    for e in chain {
        e.sync_state_with_parent()?;
    }
    let sinkpad = first
        .static_pad("sink")
        .ok_or_else(|| anyhow::anyhow!("{} has no sink pad", first.name()))?;
    pad.link(&sinkpad)?;
    Ok(())
}

/// Sends a pad nobody wants into a fakesink: an unlinked pad would stop the whole pipeline with
/// not-linked.
pub fn discard_pad(pipeline: &gst::Pipeline, pad: &gst::Pad) -> anyhow::Result<()> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .build()?;
    attach_chain(pipeline, pad, &[sink])
}
