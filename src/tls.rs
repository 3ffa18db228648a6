//! Root certificates for the app's outgoing TLS (the OTLP exporters, HTTP clients): the system's
//! when it has any, else Mozilla's roots compiled into the binary. The static binary runs in a
//! `scratch` image, which has no CA files, and must still reach a collector with a public
//! certificate.

/// Makes `ring` the process's TLS crypto provider, once: the HTTP clients (reqwest, built without
/// a provider of its own) use the process's default, and one provider for every client keeps
/// `aws-lc`, a minute of C compilation, out of the build. Every function here that builds a
/// client calls it; call it before building one any other way.
pub fn install_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // An error means a provider is installed already: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Where the root certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// The system's store, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set.
    System,
    /// The roots compiled into the binary.
    Embedded,
}

impl Roots {
    /// The system's roots when it has any, else the embedded ones. Looked up once per process:
    /// each exporter asks, and reading the system's bundle parses every certificate in it.
    pub fn find() -> Self {
        static FOUND: std::sync::OnceLock<Roots> = std::sync::OnceLock::new();
        *FOUND.get_or_init(|| {
            if rustls_native_certs::load_native_certs().certs.is_empty() {
                Roots::Embedded
            } else {
                Roots::System
            }
        })
    }
}

/// The embedded roots, for `reqwest`'s `tls_certs_only`.
pub fn embedded_certificates() -> reqwest::Result<Vec<reqwest::Certificate>> {
    install_provider();
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect()
}

/// The embedded roots as PEM, for the gRPC client, which takes certificates in that form: one
/// bundle serves both clients.
pub fn embedded_pem() -> Vec<String> {
    use base64::Engine as _;
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| {
            let text = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            let lines: Vec<&str> = text
                .as_bytes()
                .chunks(64)
                .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
                .collect();
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            )
        })
        .collect()
}

/// An HTTP client builder with the roots found. Without this, building a client fails outright
/// where the system has no roots ("No CA certificates were loaded from the system"), even for a
/// plain `http://` request.
pub fn client_builder() -> reqwest::Result<reqwest::ClientBuilder> {
    install_provider();
    let builder = reqwest::Client::builder();
    Ok(match Roots::find() {
        Roots::System => builder,
        Roots::Embedded => builder.tls_certs_only(embedded_certificates()?),
    })
}

/// A rustls client configuration with the roots found, for the clients that speak TLS
/// themselves (`load`'s connections to an `https://` target).
pub fn rustls_client_config() -> rustls::ClientConfig {
    install_provider();
    let mut roots = rustls::RootCertStore::empty();
    match Roots::find() {
        Roots::System => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
        Roots::Embedded => {
            roots.add_parsable_certificates(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(),
            );
        }
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_roots_read_back_from_pem_as_the_same_certificates() {
        let pem = super::embedded_pem();

        assert_eq!(pem.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        for (text, der) in pem.iter().zip(webpki_root_certs::TLS_SERVER_ROOT_CERTS) {
            let parsed = reqwest::Certificate::from_pem(text.as_bytes());
            assert!(parsed.is_ok(), "{text}");
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
            let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            assert_eq!(decoded, der.as_ref());
        }
    }

    #[test]
    fn the_embedded_roots_are_mozillas_and_parse() {
        let roots = super::embedded_certificates().unwrap();

        assert!(roots.len() > 100, "{} roots", roots.len());
        assert!(
            reqwest::Client::builder()
                .tls_certs_only(roots)
                .build()
                .is_ok()
        );
    }
}
