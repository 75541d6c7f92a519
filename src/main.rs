//! seatlock binary: load settings, initialise telemetry, serve.

use seatlock::{app, config::Settings, telemetry};

/// mimalloc instead of glibc malloc: a profile of the hold path showed ~15% of the service's CPU
/// in glibc's malloc/free (small, short-lived allocations across two worker threads).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("seatlock: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init_tracing(&settings.log);
    if let Err(e) = app::run(settings).await {
        tracing::error!(error = format!("{e:#}"), "seatlock failed");
        return Err(e);
    }
    Ok(())
}
