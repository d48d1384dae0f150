//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`). GStreamer's own debug log
//! stays under `GST_DEBUG` as usual. Every line passes through [`crate::redact::escape_log_line`], so
//! whatever a client put in a name or a message, one event is one line of plain text.

use std::io::Write;

/// Stderr, with control characters in each formatted event escaped.
struct EscapingStderr;

impl Write for EscapingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter hands over one whole event per call; it is written in one piece too.
        std::io::stderr()
            .lock()
            .write_all(&crate::redact::escape_log_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the log subscriber (once; later calls do nothing).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| EscapingStderr)
        .try_init();
}
