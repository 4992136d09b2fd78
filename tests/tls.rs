//! HTTPS end to end with a rustls client: the server binary on a tiny
//! dummy model, certificates made by `openssl` for each test. HTTP/2 and
//! HTTP/1.1 by ALPN over TLS 1.3 and 1.2, client certificates for the
//! admin API, and a certificate replaced by SIGHUP under open connections.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make test certificates (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` with a new P-256 key `name.key` for subject `name`.
fn req(dir: &Path, name: &str, extra: &[&str]) {
    let (key, subject) = (format!("{name}.key"), format!("/CN={name}"));
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-subj",
        &subject,
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
}

/// A certificate authority `name` in `dir` (name.pem, name.key).
fn authority(dir: &Path, name: &str) {
    let pem = format!("{name}.pem");
    let ca = ["-addext", "basicConstraints=critical,CA:TRUE"];
    let usage = ["-addext", "keyUsage=critical,keyCertSign,cRLSign"];
    req(
        dir,
        name,
        &[&["-x509", "-days", "2", "-out", &pem][..], &ca, &usage].concat(),
    );
}

/// A certificate `name` signed by `ca`, for a server (127.0.0.1,
/// localhost) or a client.
fn leaf(dir: &Path, ca: &str, name: &str, server: bool) {
    req(dir, name, &["-out", &format!("{name}.csr")]);
    let ext = if server {
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    } else {
        "extendedKeyUsage=clientAuth\n"
    };
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `switchyard serve` on the tiny dummy model over TLS with dir's
/// server.pem and server.key, and client certificates of `client_ca`.
fn serve(dir: &Path, client_ca: Option<&Path>) -> Server {
    let port = free_port();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args([
        "serve",
        "--load-format",
        "dummy",
        "--model",
        "tiny",
        "--port",
    ])
    .arg(port.to_string())
    .arg("--state-db")
    .arg(dir.join("state.db"))
    .arg("--tls-cert")
    .arg(dir.join("server.pem"))
    .arg("--tls-key")
    .arg(dir.join("server.key"));
    if let Some(ca) = client_ca {
        cmd.arg("--tls-client-ca").arg(ca);
    }
    let child = cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap();
    Server { child, port }
}

/// A fresh directory with an authority `ca` and its `server` certificate.
fn pki(tag: &str) -> PathBuf {
    let dir = temp_dir(tag);
    authority(&dir, "ca");
    leaf(&dir, "ca", "server", true);
    dir
}

fn roots(ca: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting `ca`, speaking `versions` and offering `alpn`, with a
/// client certificate when given.
fn client(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
    cert: Option<(&Path, &Path)>,
) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(ca));
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some((c, k)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(c)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(k).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect(config: &Arc<ClientConfig>, port: u16) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    TlsConnector::from(config.clone())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// One connection's requests, over HTTP/2 or HTTP/1.1 as ALPN chose.
enum Http {
    One(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    Two(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Http {
    async fn open(tls: TlsStream<TcpStream>) -> Http {
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Http::Two(send)
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Http::One(send)
        }
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let req = hyper::Request::get(format!("https://localhost{path}"))
            .header("host", "localhost")
            .body(Empty::new())
            .unwrap();
        let resp = match self {
            Http::One(s) => s.send_request(req).await.unwrap(),
            Http::Two(s) => s.send_request(req).await.unwrap(),
        };
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Polls /ready until the server answers 200 (the condition, not a
/// fixed wait).
async fn ready(config: &Arc<ClientConfig>, server: &mut Server, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "the server exited: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        if let Ok(tls) = connect(config, server.port).await {
            if Http::open(tls).await.get("/ready").await.0 == StatusCode::OK {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn rustls_clients_get_http2_or_http1_over_tls13_and_tls12_and_untrusted_ones_fail() {
    let dir = pki("protocols");
    authority(&dir, "other");
    let ca = dir.join("ca.pem");
    let mut server = serve(&dir, None);
    runtime().block_on(async {
        let tls13 = client(&ca, &[&rustls::version::TLS13], &[b"h2", b"http/1.1"], None);
        ready(&tls13, &mut server, &dir).await;

        let stream = connect(&tls13, server.port).await.unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(
            stream.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        let (status, body) = Http::open(stream).await.get("/v1/models").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("\"object\":\"list\""), "{body}");

        let tls12 = client(&ca, &[&rustls::version::TLS12], &[b"http/1.1"], None);
        let stream = connect(&tls12, server.port).await.unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(
            stream.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        assert_eq!(
            Http::open(stream).await.get("/health").await.0,
            StatusCode::OK
        );

        let stranger = client(
            &dir.join("other.pem"),
            &[&rustls::version::TLS13],
            &[b"h2"],
            None,
        );
        let Err(refused) = connect(&stranger, server.port).await else {
            panic!("a certificate of an untrusted authority was accepted");
        };
        assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_admin_api_needs_a_client_certificate_when_an_authority_is_given() {
    let dir = pki("mtls");
    authority(&dir, "clients");
    leaf(&dir, "clients", "ops", false);
    authority(&dir, "rogue");
    leaf(&dir, "rogue", "intruder", false);
    let ca = dir.join("ca.pem");
    let mut server = serve(&dir, Some(&dir.join("clients.pem")));
    runtime().block_on(async {
        let anonymous = client(&ca, &[&rustls::version::TLS13], &[b"h2"], None);
        ready(&anonymous, &mut server, &dir).await;
        let mut http = Http::open(connect(&anonymous, server.port).await.unwrap()).await;
        assert_eq!(http.get("/v1/models").await.0, StatusCode::OK);
        let (status, body) = http.get("/admin/v1/models").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("client certificate"), "{body}");

        let ops = client(
            &ca,
            &[&rustls::version::TLS13],
            &[b"h2"],
            Some((&dir.join("ops.pem"), &dir.join("ops.key"))),
        );
        let mut http = Http::open(connect(&ops, server.port).await.unwrap()).await;
        let (status, body) = http.get("/admin/v1/models").await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // A certificate from another authority ends the handshake (TLS 1.3
        // reports it on the first read).
        let intruder = client(
            &ca,
            &[&rustls::version::TLS13],
            &[b"http/1.1"],
            Some((&dir.join("intruder.pem"), &dir.join("intruder.key"))),
        );
        let failed = match connect(&intruder, server.port).await {
            Err(_) => true,
            Ok(tls) => {
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let req = hyper::Request::get("/admin/v1/models")
                    .header("host", "localhost")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                send.send_request(req).await.is_err()
            }
        };
        assert!(
            failed,
            "a client certificate of an unknown authority was accepted"
        );
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn served_certificate(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn sighup_replaces_the_certificate_and_open_connections_carry_on() {
    let dir = pki("reload");
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    let mut server = serve(&dir, None);
    runtime().block_on(async {
        let config = client(&ca, &[&rustls::version::TLS13], &[b"http/1.1"], None);
        ready(&config, &mut server, &dir).await;
        let first = connect(&config, server.port).await.unwrap();
        let old = served_certificate(&first);
        let mut open = Http::open(first).await;
        assert_eq!(open.get("/health").await.0, StatusCode::OK);

        // A new certificate under the same names, moved into place whole.
        leaf(&dir, "ca", "renewed", true);
        std::fs::rename(dir.join("renewed.pem"), &cert).unwrap();
        std::fs::rename(dir.join("renewed.key"), &key).unwrap();
        let hup = unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
        assert_eq!(hup, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let renewed = loop {
            let tls = connect(&config, server.port).await.unwrap();
            let now = served_certificate(&tls);
            if now != old {
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "the certificate was not replaced"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // The connection opened before the reload still answers.
        assert_eq!(open.get("/health").await.0, StatusCode::OK);

        // A broken file on the next SIGHUP leaves the renewed pair serving.
        std::fs::write(&cert, "not a certificate").unwrap();
        assert_eq!(
            unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) },
            0
        );
        let log = dir.join("server.log");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("did not load")
        {
            assert!(
                Instant::now() < deadline,
                "the failed reload was not logged"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tls = connect(&config, server.port).await.unwrap();
        assert_eq!(served_certificate(&tls), renewed);
        assert_eq!(Http::open(tls).await.get("/health").await.0, StatusCode::OK);
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
