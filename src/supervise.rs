//! Background tasks (group timers, log cleaner, transaction timer) that must not die
//! silently: a task that panics is logged and started again, until shutdown.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a crashed task waits before it runs again, so a tick that panics every time
/// logs once a second instead of spinning.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs `run(shutdown)` as a task and restarts it whenever it panics. The task is expected to
/// return only when `shutdown` fires; the supervisor then returns too.
pub fn supervise<F, Fut>(
    name: &'static str,
    shutdown: watch::Receiver<bool>,
    run: F,
) -> JoinHandle<()>
where
    F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    supervise_with_delay(name, shutdown, RESTART_DELAY, run)
}

fn supervise_with_delay<F, Fut>(
    name: &'static str,
    mut shutdown: watch::Receiver<bool>,
    delay: Duration,
    mut run: F,
) -> JoinHandle<()>
where
    F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match tokio::spawn(run(shutdown.clone())).await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    tracing::error!(task = name, panic = %panic_message(e.into_panic()), "background task panicked; restarting it");
                }
                // Cancelled: the runtime is going away.
                Err(_) => return,
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    })
}

/// The message of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "(non-string panic payload)".into()),
    }
}

/// Logs a blocking-pool job that failed (panicked) instead of dropping the error.
pub fn log_join_error(name: &'static str, r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r {
        if e.is_panic() {
            tracing::error!(task = name, panic = %panic_message(e.into_panic()), "background work panicked");
        } else {
            tracing::error!(task = name, error = %e, "background work did not complete");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_panicking_tick_does_not_stop_the_timer() {
        let (tx, rx) = watch::channel(false);
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        let h = supervise_with_delay("test", rx, Duration::from_millis(5), move |mut sd| {
            let t = t.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_millis(2));
                loop {
                    tokio::select! {
                        _ = sd.changed() => break,
                        _ = every.tick() => {
                            // The third and the fifth tick panic.
                            let n = t.fetch_add(1, Ordering::SeqCst);
                            if n == 2 || n == 4 {
                                panic!("tick {n} failed");
                            }
                        }
                    }
                }
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while ticks.load(Ordering::SeqCst) < 10 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the timer stopped after a panic"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .expect("the supervisor stops on shutdown")
            .unwrap();
    }
}
