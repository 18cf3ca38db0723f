//! Health, for load balancers and probes: the standard gRPC health service
//! (`grpc.health.v1.Health`) on the Flight SQL port, and `GET /healthz` on the HTTP address
//! (`bund serve --http-addr`) for balancers that check over HTTP, as HAProxy's
//! `option httpchk` does. Both say SERVING (200) while the process takes queries and
//! NOT_SERVING (503) from the moment it is told to stop. Neither needs credentials: they
//! tell only that.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// What the gRPC health service reports on: the server as a whole ("") and Flight SQL.
const SERVICES: [&str; 2] = ["", "arrow.flight.protocol.FlightService"];

/// The process's health, as both services report it.
#[derive(Clone)]
pub(crate) struct Health {
    grpc: HealthReporter,
    serving: Arc<AtomicBool>,
}

impl Health {
    /// SERVING, and the gRPC service that says so.
    pub(crate) async fn serving() -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (grpc, service) = tonic_health::server::health_reporter();
        for name in SERVICES {
            grpc.set_service_status(name, ServingStatus::Serving).await;
        }
        let health = Self {
            grpc,
            serving: Arc::new(AtomicBool::new(true)),
        };
        (health, service)
    }

    /// NOT_SERVING from now on.
    pub(crate) async fn stopping(&self) {
        self.serving.store(false, Ordering::SeqCst);
        for name in SERVICES {
            self.grpc
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
    }

    /// `GET /healthz` (and HEAD): 200 `SERVING` or 503 `NOT_SERVING`; anything else 404.
    pub(crate) fn http(&self) -> axum::Router {
        let serving = Arc::clone(&self.serving);
        axum::Router::new().route(
            "/healthz",
            axum::routing::get(move || {
                let serving = serving.load(Ordering::SeqCst);
                async move {
                    if serving {
                        (axum::http::StatusCode::OK, "SERVING\n")
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING\n")
                    }
                }
            }),
        )
    }
}
