//! ListMultipartUploads: the one S3 call the sweeper needs that object_store
//! does not wrap. The request is signed by object_store's own SigV4
//! authorizer with the store's credentials and sent through its HTTP client;
//! this file only builds the URL and reads the XML answer.
//!
//! It must not modify anything (a listing only) and must not log the
//! request's headers (they carry the signature and any session token).

use std::sync::Arc;

use object_store::aws::{AmazonS3, AwsAuthorizer};
use object_store::client::{HttpClient, HttpRequestBody};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Upload {
    pub(super) key: String,
    pub(super) upload_id: String,
    pub(super) initiated: OffsetDateTime,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_key_marker: Option<String>,
    #[serde(default)]
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<UploadEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadEntry {
    key: String,
    upload_id: String,
    initiated: String,
}

/// The most pages followed before giving up (1000 uploads per page).
const MAX_PAGES: usize = 10_000;

fn generic(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: message.into(),
    }
}

/// RFC 3986 encoding of one query value (a space is %20, never `+`).
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Every multipart upload in progress whose key starts with `prefix`.
///
/// Fails on a transport error, a non-200 answer (its S3 error code is in
/// the message), or an answer that does not parse.
pub(super) async fn list(
    http: &HttpClient,
    client: &Arc<AmazonS3>,
    bucket_url: &str,
    region: &str,
    prefix: &str,
) -> Result<Vec<Upload>, object_store::Error> {
    let mut found = Vec::new();
    let mut markers: Option<(String, String)> = None;
    for _ in 0..MAX_PAGES {
        let mut url = format!("{bucket_url}/?uploads=&prefix={}", encode(prefix));
        if let Some((key_marker, upload_id_marker)) = &markers {
            url.push_str(&format!(
                "&key-marker={}&upload-id-marker={}",
                encode(key_marker),
                encode(upload_id_marker)
            ));
        }
        let mut request = http::Request::builder()
            .method(http::Method::GET)
            .uri(&url)
            .body(HttpRequestBody::empty())
            .map_err(|err| generic(format!("bad ListMultipartUploads request: {err}")))?;
        let credential = client.credentials().get_credential().await?;
        AwsAuthorizer::new(&credential, "s3", region).try_authorize(&mut request, None)?;
        let response = http
            .execute(request)
            .await
            .map_err(|err| object_store::Error::Generic {
                store: "S3",
                source: Box::new(err),
            })?;
        let status = response.status();
        let body =
            response
                .into_body()
                .bytes()
                .await
                .map_err(|err| object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(err),
                })?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(generic(format!(
                "ListMultipartUploads answered {status}: {}",
                text.chars().take(500).collect::<String>()
            )));
        }
        let page: ListMultipartUploadsResult = quick_xml::de::from_str(&text)
            .map_err(|err| generic(format!("ListMultipartUploads answer does not parse: {err}")))?;
        for entry in page.uploads {
            // Fail rather than guess: an age read as "long ago" would let a
            // sweeper abort a live upload.
            let initiated = OffsetDateTime::parse(&entry.initiated, &Rfc3339).map_err(|err| {
                generic(format!(
                    "ListMultipartUploads gave upload {:?} an unreadable Initiated {:?}: {err}",
                    entry.key, entry.initiated
                ))
            })?;
            found.push(Upload {
                key: entry.key,
                upload_id: entry.upload_id,
                initiated,
            });
        }
        match (
            page.is_truncated,
            page.next_key_marker,
            page.next_upload_id_marker,
        ) {
            (false, _, _) => return Ok(found),
            (true, Some(key_marker), Some(upload_id_marker)) => {
                markers = Some((key_marker, upload_id_marker));
            }
            (true, _, _) => {
                return Err(generic(
                    "ListMultipartUploads is truncated but gives no markers to continue".to_owned(),
                ));
            }
        }
    }
    Err(generic(format!(
        "ListMultipartUploads did not end within {MAX_PAGES} pages"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_as_s3_and_seaweedfs_write_them() {
        // SeaweedFS 4.48's answer, as captured.
        let seaweed = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>portcullis-test</Bucket><Delimiter></Delimiter><EncodingType></EncodingType><IsTruncated>false</IsTruncated><KeyMarker></KeyMarker><MaxUploads>10000</MaxUploads><Prefix>x/</Prefix><Upload><Initiated>2026-11-28T19:13:04Z</Initiated><Key>x/obj1</Key><UploadId>b317a9_63696a</UploadId></Upload></ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = quick_xml::de::from_str(seaweed).unwrap();
        assert!(!page.is_truncated);
        assert_eq!(page.uploads.len(), 1);
        assert_eq!(page.uploads[0].key, "x/obj1");
        assert_eq!(page.uploads[0].upload_id, "b317a9_63696a");
        // AWS's documented shape: several uploads, owner blocks, markers.
        let aws = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>my-movie.m2ts</NextKeyMarker><NextUploadIdMarker>YW55IGlk</NextUploadIdMarker>
  <MaxUploads>3</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>my-divisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>
    <Initiator><ID>arn:aws:iam::111122223333:user/user1</ID><DisplayName>user1</DisplayName></Initiator>
    <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>OwnerDisplayName</DisplayName></Owner>
    <StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>
  <Upload><Key>my-movie.m2ts</Key><UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
    <StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = quick_xml::de::from_str(aws).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("my-movie.m2ts"));
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("YW55IGlk"));
        assert_eq!(page.uploads.len(), 2);
        assert!(OffsetDateTime::parse(&page.uploads[0].initiated, &Rfc3339).is_ok());
        // No uploads at all.
        let empty = r#"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = quick_xml::de::from_str(empty).unwrap();
        assert!(page.uploads.is_empty());
    }

    #[test]
    fn query_values_are_rfc3986_encoded() {
        assert_eq!(encode("a/b c+d"), "a%2Fb%20c%2Bd");
        assert_eq!(encode("images/6f1b-x_y.z~"), "images%2F6f1b-x_y.z%7E");
    }
}
