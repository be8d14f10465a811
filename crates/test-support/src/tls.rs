//! A test certificate authority: a root CA, an optional intermediate CA and server
//! certificates for loopback, built with rcgen and signed with OpenSSL (ECDSA P-256, SHA-256).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm,
    SigningKey,
};
use tempfile::TempDir;

/// The names the default server certificate of a [`TestCa`] is valid for: the subject
/// alternative names `IP:127.0.0.1` and `DNS:localhost`.
pub const LOOPBACK_NAMES: &[&str] = &["127.0.0.1", "localhost"];

/// A certificate chain and its private key, in PEM, that a TLS server presents; made by a
/// [`TestCa`] and served by [`GitHttpServerBuilder::tls_identity`](crate::GitHttpServerBuilder::tls_identity).
/// The private key is never printed by `Debug`.
#[derive(Clone)]
pub struct TlsIdentity {
    cert_pem: String,
    intermediates_pem: Vec<String>,
    key_pem: String,
    names: Vec<String>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("names", &self.names)
            .field("intermediates", &self.intermediates_pem.len())
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// The end-entity (server) certificate alone, in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The intermediate CA certificates a server sends after its own (the one that issued
    /// it first), in PEM; empty when the root CA issued the certificate directly.
    pub fn intermediates_pem(&self) -> &[String] {
        &self.intermediates_pem
    }

    /// The server certificate followed by the intermediates: the content of a
    /// `fullchain.pem`.
    pub fn chain_pem(&self) -> String {
        std::iter::once(self.cert_pem.as_str())
            .chain(self.intermediates_pem.iter().map(String::as_str))
            .collect()
    }

    /// The certificate's private key (ECDSA P-256), PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The subject alternative names the certificate is valid for, as given (IP addresses
    /// and DNS names).
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// A certificate authority for HTTPS tests: a self-signed root CA and, with
/// [`with_intermediate`](Self::with_intermediate), an intermediate CA that signs the
/// server certificates in its place. Its root certificate is written to a file
/// ([`ca_path`](Self::ca_path)) for `GIT_SSL_CAINFO` (git CLI) or
/// `git2::opts::set_ssl_cert_file` (libgit2). Clones share the same CA.
///
/// Keys are ECDSA P-256, signatures ECDSA with SHA-256, made with OpenSSL; certificates
/// are valid from 1975 to 4096 (rcgen's defaults), so no test depends on the clock.
///
/// ```no_run
/// use test_support::{BareRemote, GitHttpServer, TestCa, git};
///
/// let remote = BareRemote::new();
/// remote.cli_commit("main", &[("f", Some("x"))], "seed");
/// let ca = TestCa::new();
/// let server = GitHttpServer::builder(remote.project_root()).tls(&ca).start();
/// assert!(server.url("remote.git").starts_with("https://127.0.0.1:"));
/// // git -c http.sslCAInfo=<ca.ca_path()> clone <server.url("remote.git")>
/// ```
#[derive(Clone)]
pub struct TestCa {
    inner: Arc<CaInner>,
}

struct CaInner {
    _dir: TempDir,
    ca_path: PathBuf,
    root_pem: String,
    intermediate_pem: Option<String>,
    /// Signs the server certificates: the intermediate CA if there is one, else the root.
    issuer: Issuer<'static, OpensslKey>,
    server: TlsIdentity,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("ca_path", &self.inner.ca_path)
            .field("intermediate", &self.inner.intermediate_pem.is_some())
            .field("server", &self.inner.server)
            .finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A root CA that signs the server certificate for [`LOOPBACK_NAMES`] itself.
    ///
    /// # Panics
    /// When OpenSSL or rcgen fail, or the CA file cannot be written.
    pub fn new() -> Self {
        Self::build(false)
    }

    /// A root CA, an intermediate CA signed by it, and a server certificate for
    /// [`LOOPBACK_NAMES`] signed by the intermediate; servers send the intermediate after
    /// their certificate, and clients trust only the root ([`ca_path`](Self::ca_path)).
    ///
    /// # Panics
    /// When OpenSSL or rcgen fail, or the CA file cannot be written.
    pub fn with_intermediate() -> Self {
        Self::build(true)
    }

    fn build(intermediate: bool) -> Self {
        let root_key = OpensslKey::generate();
        let mut root_params = ca_params("test-support root CA", &root_key);
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root_pem = root_params
            .self_signed(&root_key)
            .expect("self-sign the root CA")
            .pem();
        let root = Issuer::new(root_params, root_key);
        let (issuer, intermediate_pem) = if intermediate {
            let key = OpensslKey::generate();
            let mut params = ca_params("test-support intermediate CA", &key);
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.use_authority_key_identifier_extension = true;
            let pem = params
                .signed_by(&key, &root)
                .expect("sign the intermediate CA")
                .pem();
            (Issuer::new(params, key), Some(pem))
        } else {
            (root, None)
        };
        let dir = tempfile::Builder::new()
            .prefix("test-ca-")
            .tempdir()
            .expect("create a directory for the test CA");
        let ca_path = dir.path().join("ca.pem");
        fs::write(&ca_path, &root_pem).expect("write the CA certificate");
        let server = issue(&issuer, intermediate_pem.as_deref(), LOOPBACK_NAMES);
        Self {
            inner: Arc::new(CaInner {
                _dir: dir,
                ca_path,
                root_pem,
                intermediate_pem,
                issuer,
                server,
            }),
        }
    }

    /// The root CA certificate in PEM: what clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.inner.root_pem
    }

    /// A file holding [`ca_pem`](Self::ca_pem), removed with the last clone of this CA:
    /// for `GIT_SSL_CAINFO`, `http.sslCAInfo` or `git2::opts::set_ssl_cert_file`.
    pub fn ca_path(&self) -> &Path {
        &self.inner.ca_path
    }

    /// The intermediate CA certificate in PEM, when made by
    /// [`with_intermediate`](Self::with_intermediate).
    pub fn intermediate_pem(&self) -> Option<&str> {
        self.inner.intermediate_pem.as_deref()
    }

    /// The server certificate for [`LOOPBACK_NAMES`] (without intermediates), in PEM.
    pub fn server_cert_pem(&self) -> &str {
        self.inner.server.cert_pem()
    }

    /// The server certificate for [`LOOPBACK_NAMES`] with its key and intermediates, as
    /// served by [`GitHttpServerBuilder::tls`](crate::GitHttpServerBuilder::tls).
    pub fn server_identity(&self) -> TlsIdentity {
        self.inner.server.clone()
    }

    /// A new server certificate from this CA for other names (IP addresses or DNS names),
    /// e.g. `&["wrong.example"]` for a "name mismatch" test: served on `127.0.0.1`, it is
    /// trusted (same CA) but not valid for the address the client connects to. The first
    /// name is also the subject's common name (placed so that libgit2 1.9 finds it: up to
    /// 5 names).
    ///
    /// # Panics
    /// When `names` is empty or holds a name rcgen refuses, or signing fails.
    pub fn issue_server_identity(&self, names: &[&str]) -> TlsIdentity {
        assert!(!names.is_empty(), "a server certificate needs a name");
        issue(
            &self.inner.issuer,
            self.inner.intermediate_pem.as_deref(),
            names,
        )
    }
}

/// Parameters shared by the CA certificates.
fn ca_params(common_name: &str, key: &OpensslKey) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "test-support");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    params.key_identifier_method = KeyIdMethod::PreSpecified(key.key_id.clone());
    params
}

/// Makes a server certificate for `names`, signed by `issuer`.
fn issue(
    issuer: &Issuer<'_, OpensslKey>,
    intermediate_pem: Option<&str>,
    names: &[&str],
) -> TlsIdentity {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let key = OpensslKey::generate();
    let mut params = CertificateParams::new(names.clone())
        .unwrap_or_else(|e| panic!("invalid certificate names {names:?}: {e}"));
    // The common name comes last, after five other entries: libgit2 1.9.7 (its OpenSSL
    // stream) looks for it only when no subject alternative name has the type of the host
    // (e.g. only DNS names while connecting to an IP address), and then starts its search
    // after index <number of SANs> instead of at 0. With the common name at index 5 it is
    // found for certificates of up to 5 names, and a wrong name gets libgit2's "hostname
    // does not match certificate" instead of a misleading "SSL error: received early EOF".
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "XX");
    dn.push(DnType::StateOrProvinceName, "Test");
    dn.push(DnType::LocalityName, "Loopback");
    dn.push(DnType::OrganizationName, "test-support");
    dn.push(DnType::OrganizationalUnitName, "server certificates");
    dn.push(DnType::CommonName, names[0].as_str());
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    params.key_identifier_method = KeyIdMethod::PreSpecified(key.key_id.clone());
    let cert_pem = params
        .signed_by(&key, issuer)
        .expect("sign the server certificate")
        .pem();
    TlsIdentity {
        cert_pem,
        intermediates_pem: intermediate_pem.map(str::to_owned).into_iter().collect(),
        key_pem: key.private_key_pem(),
        names,
    }
}

/// A random positive 16-byte serial number.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).expect("random bytes from OpenSSL");
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

/// An ECDSA P-256 key held by OpenSSL, which signs for rcgen (built without `ring`).
struct OpensslKey {
    pkey: PKey<Private>,
    /// The uncompressed public point, as the SubjectPublicKeyInfo's bit string holds it.
    public_point: Vec<u8>,
    /// The subject key identifier: the first 20 bytes of the SHA-256 of the
    /// SubjectPublicKeyInfo (RFC 7093, method 1).
    key_id: Vec<u8>,
}

impl OpensslKey {
    fn generate() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("OpenSSL knows P-256");
        let ec = EcKey::generate(&group).expect("generate a P-256 key");
        let mut ctx = BigNumContext::new().expect("OpenSSL big number context");
        let public_point = ec
            .public_key()
            .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
            .expect("encode the public key");
        let pkey = PKey::from_ec_key(ec).expect("wrap the P-256 key");
        let spki = pkey
            .public_key_to_der()
            .expect("encode the public key info");
        let key_id = openssl::sha::sha256(&spki)[..20].to_vec();
        Self {
            pkey,
            public_point,
            key_id,
        }
    }

    fn private_key_pem(&self) -> String {
        let pem = self
            .pkey
            .private_key_to_pem_pkcs8()
            .expect("encode the private key");
        String::from_utf8(pem).expect("PEM is ASCII")
    }
}

impl PublicKeyData for OpensslKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for OpensslKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // OpenSSL's ECDSA signature is the DER `ECDSA-Sig-Value` that X.509 expects.
        let mut signer = Signer::new(MessageDigest::sha256(), &self.pkey)
            .map_err(|_| rcgen::Error::RemoteKeyError)?;
        signer
            .update(msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)?;
        signer
            .sign_to_vec()
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

#[cfg(test)]
mod tests {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509, X509StoreContext};

    use super::*;

    /// Verifies `identity` against `ca` with OpenSSL, as a client would (without the host
    /// name check); returns the error string on failure.
    fn verify(ca: &TestCa, identity: &TlsIdentity) -> Result<(), String> {
        let mut store = X509StoreBuilder::new().unwrap();
        store
            .add_cert(X509::from_pem(ca.ca_pem().as_bytes()).unwrap())
            .unwrap();
        let store = store.build();
        let leaf = X509::from_pem(identity.cert_pem().as_bytes()).unwrap();
        let mut chain = Stack::new().unwrap();
        for pem in identity.intermediates_pem() {
            chain.push(X509::from_pem(pem.as_bytes()).unwrap()).unwrap();
        }
        let mut ctx = X509StoreContext::new().unwrap();
        ctx.init(&store, &leaf, &chain, |c| {
            Ok(if c.verify_cert()? {
                Ok(())
            } else {
                Err(c.error().to_string())
            })
        })
        .unwrap()
    }

    #[test]
    fn certificates_verify_with_and_without_an_intermediate() {
        for ca in [TestCa::new(), TestCa::with_intermediate()] {
            let identity = ca.server_identity();
            verify(&ca, &identity).unwrap();
            let leaf = X509::from_pem(identity.cert_pem().as_bytes()).unwrap();
            let sans: Vec<String> = leaf
                .subject_alt_names()
                .unwrap()
                .iter()
                .map(|n| {
                    n.dnsname().map_or_else(
                        || format!("IP:{:?}", n.ipaddress().unwrap()),
                        |d| format!("DNS:{d}"),
                    )
                })
                .collect();
            assert_eq!(sans, ["IP:[127, 0, 0, 1]", "DNS:localhost"]);
            let key = PKey::private_key_from_pem(identity.key_pem().as_bytes()).unwrap();
            assert!(leaf.public_key().unwrap().public_eq(&key));
            assert_eq!(
                identity.chain_pem().matches("BEGIN CERTIFICATE").count(),
                1 + usize::from(ca.intermediate_pem().is_some())
            );
            assert_eq!(fs::read_to_string(ca.ca_path()).unwrap(), ca.ca_pem());

            let other = ca.issue_server_identity(&["wrong.example"]);
            verify(&ca, &other).unwrap();
            assert_ne!(other.cert_pem(), identity.cert_pem());
            // The common name is the first name, at index 5 of the subject (for libgit2).
            let leaf = X509::from_pem(other.cert_pem().as_bytes()).unwrap();
            let subject: Vec<_> = leaf.subject_name().entries().collect();
            assert_eq!(subject.len(), 6);
            assert_eq!(subject[5].object().nid(), Nid::COMMONNAME);
            assert_eq!(subject[5].data().as_slice(), b"wrong.example");
        }
        // Another CA's certificate does not verify.
        let (a, b) = (TestCa::new(), TestCa::with_intermediate());
        assert!(verify(&a, &b.server_identity()).is_err());
        assert!(verify(&b, &a.server_identity()).is_err());
    }
}
