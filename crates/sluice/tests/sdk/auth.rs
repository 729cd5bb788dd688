//! SigV4 with the Rust SDK's own signer (aws-sigv4): a server started with an access key in its
//! environment accepts the SDK's signatures (it signs `x-amz-user-agent` and its other headers,
//! which the server requires of every `x-amz-*` header) and refuses a wrong secret or an
//! unknown key with AWS's codes, which the SDK surfaces as the error's code.

use aws_sdk_sqs::error::ProvideErrorMetadata;
use sluice_testkit::{client_for, client_with_credentials, skip_if_external, TestServer};

use super::SLUICE_BIN;

const KEY: &str = "AKSLUICESDKTEST00001";
const SECRET: &str = "sdk-test-secret-0123456789abcdefghijklmn";

#[tokio::test]
async fn the_sdk_signs_and_a_wrong_secret_or_key_is_refused() {
    let server = TestServer::spawn_with(
        SLUICE_BIN,
        &["--data-dir", ":memory:"],
        &[("SLUICE_ACCESS_KEY_ID", KEY), ("SLUICE_SECRET_ACCESS_KEY", SECRET)],
    );
    if skip_if_external(&server, "the_sdk_signs_and_a_wrong_secret_or_key_is_refused") {
        return;
    }
    let good = client_with_credentials(&server.endpoint, KEY, SECRET);
    let url = good.create_queue().queue_name("signed").send().await.unwrap().queue_url.unwrap();
    good.send_message().queue_url(&url).message_body("hello").send().await.unwrap();
    let got = good.receive_message().queue_url(&url).wait_time_seconds(1).send().await.unwrap();
    assert_eq!(got.messages()[0].body(), Some("hello"));

    let cases = [
        (client_with_credentials(&server.endpoint, KEY, "not-the-secret"), "SignatureDoesNotMatch"),
        (client_with_credentials(&server.endpoint, "AKNOBODY", SECRET), "InvalidClientTokenId"),
        // The kit's usual client (test/test) is refused like any unknown key.
        (client_for(&server.endpoint), "InvalidClientTokenId"),
    ];
    for (client, code) in cases {
        let err = client.send_message().queue_url(&url).message_body("x").send().await.unwrap_err();
        let status = err.raw_response().map(|r| r.status().as_u16());
        let se = err.into_service_error();
        // The SDK surfaces errors it does not model (these are AWS framework errors) by their code.
        assert_eq!((se.code(), status), (Some(code), Some(403)), "{se:?}");
    }
    // Nothing got in.
    let got = good.receive_message().queue_url(&url).wait_time_seconds(1).send().await.unwrap();
    assert!(got.messages().is_empty());
}
