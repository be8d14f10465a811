//! Generates the echo service of `proto/echo.proto` with protox (no `protoc` needed), as
//! `storage-proto` does for the product's API.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("echo.proto").display()
    );
    let fds = protox::compile(["echo.proto"], [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
