//! The logger: text or JSON lines on stderr (as kube-proxy's klog), colour
//! only when stderr is a terminal and `NO_COLOR` is unset; `RUST_LOG`
//! overrides the level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::{flags::LogFormat, settings::LogLevel};

pub fn init(level: LogLevel, format: LogFormat) {
    let default = match level {
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init()
        }
    }
}
