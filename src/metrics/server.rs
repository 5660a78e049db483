//! `/metrics` (Prometheus text) and `/healthz` over HTTP, bound to loopback unless bot.yaml
//! says otherwise.

use super::{metrics, status, wall_ms};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What `/healthz` checks against.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// The run's SQLite file (a row is written in a transaction that is rolled back).
    pub db_path: PathBuf,
    /// Older than this, the last cycle counts as stalled (503).
    pub max_cycle_age: Duration,
}

/// The `/healthz` answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    pub ok: bool,
    pub last_cycle_age_ms: i64,
    pub last_cycle_id: Option<i64>,
    pub mode: String,
    pub db_writable: bool,
    /// Why not ok (empty when ok).
    pub problems: Vec<String>,
}

/// Checks the live status and the database now.
pub fn check(config: &HealthConfig) -> Health {
    let age = status().cycle_age_ms(wall_ms());
    let mut problems = Vec::new();
    let max_ms = i64::try_from(config.max_cycle_age.as_millis()).unwrap_or(i64::MAX);
    if age > max_ms {
        problems.push(format!("no cycle for {age} ms (max {max_ms} ms)"));
    }
    let db_writable = match crate::store::health::probe_write(&config.db_path) {
        Ok(()) => true,
        Err(e) => {
            problems.push(format!("database not writable: {e}"));
            false
        }
    };
    Health {
        ok: problems.is_empty(),
        last_cycle_age_ms: age,
        last_cycle_id: status().last_cycle_id(),
        mode: status().mode(),
        db_writable,
        problems,
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics().render(),
    )
}

async fn healthz(State(config): State<Arc<HealthConfig>>) -> impl IntoResponse {
    let health = match tokio::task::spawn_blocking(move || check(&config)).await {
        Ok(h) => h,
        Err(e) => Health {
            ok: false,
            last_cycle_age_ms: -1,
            last_cycle_id: None,
            mode: status().mode(),
            db_writable: false,
            problems: vec![format!("health check failed: {e}")],
        },
    };
    let code = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(health))
}

/// Binds `listen` and serves until the process ends; returns the bound address (port 0 picks
/// a free one).
///
/// # Errors
/// The address cannot be bound (in use, not local).
pub async fn serve(listen: SocketAddr, config: HealthConfig) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("metrics server: cannot listen on {listen}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("metrics server: {e}"))?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .with_state(Arc::new(config));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics server stopped: {e}");
        }
    });
    Ok(bound)
}
