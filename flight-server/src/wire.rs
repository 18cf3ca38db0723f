//! The Flight service as clients reach it: arrow-flight's Flight SQL dispatch over
//! [`BundService`], with one correction. The dispatch decodes each command before Bund sees
//! it and answers a command that does not decode (a ticket of random bytes, a truncated
//! protobuf message) with Internal, the status of a server's bug; the client sent a
//! malformed request, and is told so with InvalidArgument.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::service::BundService;

pub(crate) struct Wire(pub(crate) BundService);

/// A status of arrow-flight's dispatch for a request it could not decode becomes
/// InvalidArgument; every other status passes unchanged.
fn malformed(status: Status) -> Status {
    if status.code() == Code::Internal
        && (status.message().starts_with("ParseError(")
            || status.message().starts_with("Unable to decode"))
    {
        tracing::info!(detail = status.message(), "malformed request");
        return Status::invalid_argument(
            "malformed request: the command or ticket is not a Flight SQL message Bund can read",
        );
    }
    status
}

type Inner = BundService;

#[tonic::async_trait]
impl FlightService for Wire {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        FlightService::list_flights(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        FlightService::get_flight_info(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        FlightService::poll_flight_info(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        FlightService::get_schema(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        FlightService::do_get(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        FlightService::do_action(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        FlightService::list_actions(&self.0, request)
            .await
            .map_err(malformed)
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&self.0, request)
            .await
            .map_err(malformed)
    }
}
