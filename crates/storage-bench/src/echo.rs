//! The echo baseline: a bare tonic unary server that answers with a reply of the asked size,
//! run as its own process (`storage-bench echo-server`) so that it is measured with the same
//! client, the same payload sizes and the same process layout as the real server.

use std::path::Path;

use anyhow::{Context as _, Result};
use tonic::{Request, Response, Status};

/// Generated code of `proto/echo.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::allow_attributes_without_reason,
    reason = "generated code"
)]
pub mod pb {
    tonic::include_proto!("bench.echo.v1");
}

pub use pb::echo_client::EchoClient;
pub use pb::{EchoReply, EchoRequest};

/// Largest reply the server makes.
const MAX_REPLY: u32 = 4 << 20;

#[derive(Debug, Default)]
struct EchoService;

#[tonic::async_trait]
impl pb::echo_server::Echo for EchoService {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let size = request.get_ref().reply_size.min(MAX_REPLY) as usize;
        Ok(Response::new(EchoReply {
            payload: vec![b'a'; size],
        }))
    }
}

/// Serves the echo service on `127.0.0.1:0` (TCP_NODELAY, as the real server) and writes
/// `{"grpc":"ADDR"}` to `ready_file` once it listens. Runs until the process is killed.
pub async fn serve(ready_file: &Path) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let tmp = ready_file.with_extension("partial");
    std::fs::write(
        &tmp,
        serde_json::json!({ "grpc": addr.to_string() }).to_string(),
    )?;
    std::fs::rename(&tmp, ready_file).with_context(|| format!("write {}", ready_file.display()))?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(pb::echo_server::EchoServer::new(EchoService))
        .serve_with_incoming(incoming)
        .await
        .context("echo server failed")
}

/// An echo request whose encoded size is `request_bytes` (or the smallest possible, when
/// that is smaller) and that asks for a reply of `reply_bytes` encoded bytes.
pub fn request_like(request_bytes: usize, reply_bytes: usize) -> EchoRequest {
    use prost::Message as _;
    let reply_size = payload_for(reply_bytes, |n| {
        EchoReply {
            payload: vec![0; n],
        }
        .encoded_len()
    });
    let reply_size = u32::try_from(reply_size).unwrap_or(MAX_REPLY);
    let padding = payload_for(request_bytes, |n| {
        EchoRequest {
            payload: vec![0; n],
            reply_size,
        }
        .encoded_len()
    });
    EchoRequest {
        payload: vec![b'p'; padding],
        reply_size,
    }
}

/// The largest payload length `n` with `encoded(n) <= target` (0 when none fits).
fn payload_for(target: usize, encoded: impl Fn(usize) -> usize) -> usize {
    let mut n = target;
    while n > 0 && encoded(n) > target {
        n -= 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn requests_and_replies_match_the_sizes_they_stand_for() {
        for (req, reply) in [(60, 700), (300, 40), (1000, 10_000)] {
            let r = request_like(req, reply);
            assert_eq!(r.encoded_len(), req, "request of {req} bytes");
            let answer = EchoReply {
                payload: vec![0; r.reply_size as usize],
            };
            assert_eq!(answer.encoded_len(), reply, "reply of {reply} bytes");
        }
    }
}
