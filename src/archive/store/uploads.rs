//! Unfinished multipart uploads as the bucket itself lists them (S3's
//! ListMultipartUploads), for the ones no journal entry names: a writer killed
//! between `create_multipart` and its journal entry (journal.rs), or an archive
//! folder lost with its journal. S3 keeps such parts, and bills for them,
//! until someone aborts the upload.
//!
//! object_store has no call for this listing, but it exposes its SigV4 signer
//! (`AwsAuthorizer`), its credential provider and its HTTP client: this is one
//! signed GET built from those, so credentials, region and endpoint are found
//! exactly as for every other request.

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::{ClientConfigKey, ClientOptions};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

/// Unreserved characters stay as they are (SigV4's canonical query encoding).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Every client setting a store's builder can carry (`AWS_PROXY_URL`, timeouts,
/// TLS, ...; object_store's `ClientConfigKey`). The builder keeps its
/// `ClientOptions` to itself, so the listing's client is rebuilt from these
/// keys: a key missing here would leave the listing on a default the store
/// does not use (a proxy bypassed, no timeout), so the list follows the enum.
const CLIENT_KEYS: [ClientConfigKey; 20] = [
    ClientConfigKey::AllowHttp,
    ClientConfigKey::AllowInvalidCertificates,
    ClientConfigKey::NoSystemCertificates,
    ClientConfigKey::ConnectTimeout,
    ClientConfigKey::DefaultContentType,
    ClientConfigKey::Http1Only,
    ClientConfigKey::Http2KeepAliveInterval,
    ClientConfigKey::Http2KeepAliveTimeout,
    ClientConfigKey::Http2KeepAliveWhileIdle,
    ClientConfigKey::Http2MaxFrameSize,
    ClientConfigKey::Http2Only,
    ClientConfigKey::PoolIdleTimeout,
    ClientConfigKey::PoolMaxIdlePerHost,
    ClientConfigKey::ProxyUrl,
    ClientConfigKey::ProxyCaCertificate,
    ClientConfigKey::ProxyExcludes,
    ClientConfigKey::RandomizeAddresses,
    ClientConfigKey::ReadTimeout,
    ClientConfigKey::Timeout,
    ClientConfigKey::UserAgent,
];

/// The client options of the store `builder` builds.
fn client_options(builder: &AmazonS3Builder) -> ClientOptions {
    CLIENT_KEYS.iter().fold(ClientOptions::new(), |o, k| match builder.get_config_value(&AmazonS3ConfigKey::Client(*k)) {
        Some(v) => o.with_config(*k, v),
        None => o,
    })
}

/// One upload the bucket holds open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadsError {
    #[error("cannot list the bucket's unfinished uploads: {0}")]
    Request(String),
    #[error("the server answered {status} to ListMultipartUploads: {body}")]
    Status { status: u16, body: String },
    #[error("cannot read the server's list of unfinished uploads: {0}")]
    Parse(String),
}

/// Lists a bucket's unfinished uploads with the same settings as the
/// `AmazonS3` store built from the same builder.
pub struct UploadLister {
    s3: AmazonS3,
    client: HttpClient,
    /// `https://host/bucket` (path style) or `https://bucket.host`.
    bucket_url: String,
    region: String,
}

impl UploadLister {
    pub fn new(builder: &AmazonS3Builder, s3: AmazonS3) -> Result<UploadLister, UploadsError> {
        let get = |k: AmazonS3ConfigKey| builder.get_config_value(&k);
        let bucket = get(AmazonS3ConfigKey::Bucket).ok_or_else(|| UploadsError::Request("no bucket".into()))?;
        let region = get(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let virtual_hosted = get(AmazonS3ConfigKey::VirtualHostedStyleRequest).is_some_and(|v| v == "true");
        // As object_store's builder addresses the bucket.
        let bucket_url = match (get(AmazonS3ConfigKey::Endpoint), virtual_hosted) {
            (Some(e), true) => e.trim_end_matches('/').to_string(),
            (Some(e), false) => format!("{}/{bucket}", e.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let client = ReqwestConnector::default().connect(&client_options(builder)).map_err(|e| UploadsError::Request(e.to_string()))?;
        Ok(UploadLister { s3, client, bucket_url, region })
    }

    /// Every unfinished upload whose key starts with `prefix`, page by page.
    pub async fn list(&self, prefix: &str) -> Result<Vec<OpenUpload>, UploadsError> {
        let mut out = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut query = format!("prefix={}&uploads=", utf8_percent_encode(prefix, QUERY));
            if let Some((k, u)) = &marker {
                query += &format!("&key-marker={}&upload-id-marker={}", utf8_percent_encode(k, QUERY), utf8_percent_encode(u, QUERY));
            }
            let page = parse(&self.get(&format!("{}?{query}", self.bucket_url)).await?)?;
            out.extend(page.uploads.into_iter().map(|u| OpenUpload { key: u.key, upload_id: u.upload_id }));
            match (page.is_truncated, page.next_key_marker, page.next_upload_id_marker) {
                (true, Some(k), Some(u)) if marker.as_ref() != Some(&(k.clone(), u.clone())) => marker = Some((k, u)),
                _ => return Ok(out),
            }
        }
    }

    async fn get(&self, url: &str) -> Result<String, UploadsError> {
        let req_err = |e: &dyn std::fmt::Display| UploadsError::Request(e.to_string());
        let cred = self.s3.credentials().get_credential().await.map_err(|e| req_err(&e))?;
        let mut req = http::Request::builder().method("GET").uri(url).body(HttpRequestBody::from(Vec::new())).map_err(|e| req_err(&e))?;
        AwsAuthorizer::new(&cred, "s3", &self.region).try_authorize(&mut req, None).map_err(|e| req_err(&e))?;
        let resp = self.client.execute(req).await.map_err(|e| req_err(&e))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().bytes().await.map_err(|e| req_err(&e))?;
        let body = String::from_utf8_lossy(&body).into_owned();
        if !(200..300).contains(&status) {
            return Err(UploadsError::Status { status, body: body.chars().take(500).collect() });
        }
        Ok(body)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Page {
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(rename = "Upload")]
    uploads: Vec<Upload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
}

fn parse(xml: &str) -> Result<Page, UploadsError> {
    quick_xml::de::from_str(xml).map_err(|e| UploadsError::Parse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape of AWS's documented ListMultipartUploads answer (trimmed).
    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>studio</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>show-x/packs/00000002.pack</NextKeyMarker><NextUploadIdMarker>u-2</NextUploadIdMarker>
  <Prefix>show-x/packs/</Prefix><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>show-x/packs/00000001.pack</Key><UploadId>u-1</UploadId>
    <Initiator><ID>x</ID><DisplayName>x</DisplayName></Initiator><StorageClass>STANDARD</StorageClass>
    <Initiated>2026-11-30T08:00:00.000Z</Initiated></Upload>
  <Upload><Key>show-x/packs/00000002.pack</Key><UploadId>u-2</UploadId><Initiated>2026-11-30T08:00:01.000Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;

    /// The listing goes out with the store's own client settings: here a proxy
    /// (the only way to the made-up endpoint) and a timeout. The proxy is a
    /// one-shot HTTP listener on loopback that answers with one page.
    #[test]
    fn the_listing_uses_the_stores_proxy_and_client_settings() {
        use std::io::{Read, Write};
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = proxy.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = proxy.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before its request was whole");
                req.extend_from_slice(&buf[..n]);
            }
            let body = PAGE.replace("<IsTruncated>true", "<IsTruncated>false");
            write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            String::from_utf8_lossy(&req).into_owned()
        });
        let b = AmazonS3Builder::new()
            .with_bucket_name("studio")
            .with_region("us-east-1")
            .with_endpoint("http://s3.reelfs-test.invalid:9000")
            .with_allow_http(true)
            .with_access_key_id("k")
            .with_secret_access_key("s")
            .with_proxy_url(format!("http://127.0.0.1:{port}"))
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "20s");
        let opts = client_options(&b);
        assert_eq!(opts.get_config_value(&ClientConfigKey::ProxyUrl), Some(format!("http://127.0.0.1:{port}")));
        assert_eq!(opts.get_config_value(&ClientConfigKey::Timeout).as_deref(), Some("20s"));
        let lister = UploadLister::new(&b, b.clone().build().unwrap()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = rt.block_on(lister.list("show-x/packs/")).expect("listed through the proxy");
        assert_eq!(got.len(), 2, "{got:?}");
        let req = server.join().unwrap();
        assert!(req.starts_with("GET http://s3.reelfs-test.invalid:9000/studio?prefix=show-x%2Fpacks%2F&uploads="), "{req}");
    }

    #[test]
    fn a_list_multipart_uploads_page_is_read_with_its_continuation() {
        let p = parse(PAGE).unwrap();
        let keys: Vec<_> = p.uploads.iter().map(|u| (u.key.as_str(), u.upload_id.as_str())).collect();
        assert_eq!(keys, [("show-x/packs/00000001.pack", "u-1"), ("show-x/packs/00000002.pack", "u-2")]);
        assert!(p.is_truncated);
        assert_eq!((p.next_key_marker.as_deref(), p.next_upload_id_marker.as_deref()), (Some("show-x/packs/00000002.pack"), Some("u-2")));
        let empty = parse(r#"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"#).unwrap();
        assert!(empty.uploads.is_empty() && !empty.is_truncated);
    }
}
