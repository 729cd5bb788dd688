//! `sluice-bench ceiling`: the ceiling of the HTTP stack on this machine. Same hyper settings
//! as sluice's listener (http1, keep-alive, TCP_NODELAY, body read in full), and a fixed JSON
//! answer: a SendMessage response for every request (SendMessageBatch gets ten successful
//! entries, CreateQueue a queue URL, so that the `send` scenario runs unchanged against it).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const SEND: &[u8] =
    br#"{"MD5OfMessageBody":"9e107d9d372bb6826bd81d3542a419d6","MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"}"#;

fn batch_response() -> Bytes {
    let entries: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"Id":"{i}","MD5OfMessageBody":"9e107d9d372bb6826bd81d3542a419d6","MessageId":"5fea7756-0ea4-451a-a703-a558b933e27{i}"}}"#))
        .collect();
    Bytes::from(format!(r#"{{"Successful":[{}],"Failed":[]}}"#, entries.join(",")))
}

pub async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let create = Bytes::from(format!(r#"{{"QueueUrl":"http://{addr}/000000000000/ceiling"}}"#));
    let batch = batch_response();
    println!("ceiling listening on http://{addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (create, batch) = (create.clone(), batch.clone());
        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
            let (create, batch) = (create.clone(), batch.clone());
            async move {
                let target = req.headers().get("x-amz-target").map(|v| v.as_bytes().to_vec()).unwrap_or_default();
                // Read the body in full, as a real server must.
                let _ = req.into_body().collect().await;
                let body = match target.as_slice() {
                    b"AmazonSQS.SendMessageBatch" => batch,
                    b"AmazonSQS.CreateQueue" | b"AmazonSQS.GetQueueUrl" => create,
                    _ => Bytes::from_static(SEND),
                };
                let mut resp = Response::new(Full::new(body));
                resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.0"));
                Ok::<_, Infallible>(resp)
            }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
