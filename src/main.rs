//! seatlock binary: load settings, initialise telemetry, serve.

use seatlock::{app, config::Settings, telemetry};

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
