//! SIGTERM and SIGINT become the controller's shutdown signal.

use tokio::sync::watch;

/// A receiver that turns `true` on the first SIGTERM or SIGINT.
pub fn shutdown_on_signal() -> watch::Receiver<bool> {
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: shutting down");
        let _ = shutdown_tx.send(true);
    });
    shutdown
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
