//! Generates the Rust code of `proto/` with protox (a pure-Rust protobuf compiler), so that
//! building needs no `protoc`, and writes the file descriptor set used by gRPC reflection.

use std::path::PathBuf;

const FILES: &[&str] = &[
    "environments/environments.proto",
    "flipt/core/core.proto",
    "flipt/storage/v1/storage.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for f in FILES {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(FILES, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("storage_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
