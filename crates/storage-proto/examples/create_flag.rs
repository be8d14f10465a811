//! Creates a flag through Flipt's environments API, the way any gRPC client would:
//! `cargo run -p storage-proto --example create_flag [-- http://127.0.0.1:9000]`.

use prost::Message as _;
use storage_proto::environments::environments_service_client::EnvironmentsServiceClient;
use storage_proto::environments::{
    GetResourceRequest, ListNamespacesRequest, UpdateResourceRequest,
};
use storage_proto::flipt::core::{Flag, FlagType, Variant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:9000".to_owned());
    let mut client = EnvironmentsServiceClient::connect(endpoint).await?;
    // Every read returns the revision it was served from; a write may carry it back, and is
    // refused (ABORTED) if what it touches changed since.
    let revision = client
        .list_namespaces(ListNamespacesRequest {
            environment_key: "default".into(),
        })
        .await?
        .into_inner()
        .revision;
    let flag = Flag {
        key: "new-checkout".into(),
        name: "New checkout".into(),
        r#type: FlagType::VariantFlagType as i32,
        enabled: true,
        variants: vec![Variant {
            key: "on".into(),
            name: "On".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let created = client
        .create_resource(UpdateResourceRequest {
            environment_key: "default".into(),
            namespace_key: "default".into(),
            key: flag.key.clone(),
            payload: Some(prost_types::Any {
                type_url: "flipt.core.Flag".into(),
                value: flag.encode_to_vec(),
            }),
            revision,
        })
        .await?
        .into_inner();
    println!(
        "created flag default/new-checkout in commit {}",
        created.revision
    );
    let read = client
        .get_resource(GetResourceRequest {
            environment_key: "default".into(),
            namespace_key: "default".into(),
            type_url: "flipt.core.Flag".into(),
            key: "new-checkout".into(),
        })
        .await?
        .into_inner();
    let flag = Flag::decode(
        read.resource
            .and_then(|r| r.payload)
            .map(|p| p.value)
            .unwrap_or_default()
            .as_slice(),
    )?;
    println!(
        "read it back: {} (enabled: {}) at revision {}",
        flag.name, flag.enabled, read.revision
    );
    Ok(())
}
