//! Verification of an https remote's certificate against one storage's CA bundle.
//!
//! libgit2 hands the certificate callback only the server's leaf certificate, so the bundle
//! must hold every intermediate CA as well as the root.

use std::net::IpAddr;

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext};

/// Checks that the DER certificate chains to a CA in `ca_pem` and names `host`.
pub(crate) fn verify(der: &[u8], host: &str, ca_pem: &[u8]) -> Result<(), String> {
    let cert = X509::from_der(der)
        .map_err(|e| format!("the server sent an unreadable certificate: {e}"))?;
    let cas =
        X509::stack_from_pem(ca_pem).map_err(|e| format!("the CA bundle cannot be read: {e}"))?;
    if cas.is_empty() {
        return Err("the CA bundle holds no certificate".into());
    }
    let mut builder = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    for ca in cas {
        builder.add_cert(ca).map_err(|e| e.to_string())?;
    }
    let mut param = X509VerifyParam::new().map_err(|e| e.to_string())?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => param.set_ip(ip).map_err(|e| e.to_string())?,
        Err(_) => param.set_host(bare).map_err(|e| e.to_string())?,
    }
    builder.set_param(&param).map_err(|e| e.to_string())?;
    let store = builder.build();
    let chain = Stack::new().map_err(|e| e.to_string())?;
    let mut ctx = X509StoreContext::new().map_err(|e| e.to_string())?;
    let verified = ctx
        .init(&store, &cert, &chain, |c| Ok((c.verify_cert()?, c.error())))
        .map_err(|e| e.to_string())?;
    match verified {
        (true, _) => Ok(()),
        (false, error) => Err(error.error_string().to_owned()),
    }
}
