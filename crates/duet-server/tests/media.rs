//! The media endpoints through the front door: uploads over HTTP to the real server on `127.0.0.1:0`,
//! downloads decoded with the `image` crate, limits, access control, the send-time rewrite of image
//! elements, and expiry with the manual clock.

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use duet_test_support::{ADMIN, TestServer, WsClient};
use futures_util::stream;
use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::{Value, json};

const MB: u64 = 1024 * 1024;
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A 1500x1000 gradient in `format`.
fn picture(format: ImageFormat) -> Vec<u8> {
    let img =
        RgbImage::from_fn(1500, 1000, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// A body of `len` zero bytes, produced chunk by chunk (never allocated whole), without Content-Length.
fn zeros(len: u64) -> reqwest::Body {
    let chunk = ZEROS.len() as u64;
    let chunks = (0..len.div_ceil(chunk)).map(move |i| {
        let n = chunk.min(len - i * chunk) as usize;
        Ok::<_, std::io::Error>(&ZEROS[..n])
    });
    reqwest::Body::wrap_stream(stream::iter(chunks))
}

fn auth(s: &TestServer, user: &str) -> String {
    format!("identifier={user}&usersig={}", s.usersig(user))
}

async fn upload(s: &TestServer, user: &str, kind: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let url = format!("{}/v1/media?type={kind}&filename=f.bin&{}", s.base_url(), auth(s, user));
    let resp = reqwest::Client::new().post(url).body(body).send().await.expect("uploading");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

async fn download(s: &TestServer, user: Option<&str>, url: &str) -> (u16, Option<String>, Vec<u8>) {
    let url = match user {
        Some(user) => format!("{url}?{}", auth(s, user)),
        None => url.to_owned(),
    };
    let resp = reqwest::get(url).await.expect("downloading");
    let status = resp.status().as_u16();
    let mime = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    (status, mime, resp.bytes().await.unwrap().to_vec())
}

/// Every file under the media directory except the index.
fn stored_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("media.db") {
            out.push(name);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

async fn send(s: &TestServer, from: &str, to: &str, seq: u32, body: Value) -> Value {
    let m = json!({"From_Account": from, "To_Account": to, "MsgSeq": seq, "MsgRandom": seq, "MsgBody": body});
    s.rest("openim/sendmsg", m).await
}

fn image_elem(uploaded: &Value) -> Value {
    json!([{"MsgType": "TIMImageElem", "MsgContent": {
        "UUID": uploaded["UUID"], "ImageFormat": uploaded["ImageFormat"], "ImageInfoArray": uploaded["ImageInfoArray"]}}])
}

#[tokio::test]
async fn png_and_jpeg_get_their_real_size_and_two_smaller_renditions_that_decode() {
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    for (format, code, mime) in [(ImageFormat::Png, 3, "image/png"), (ImageFormat::Jpeg, 1, "image/jpeg")] {
        let bytes = picture(format);
        let (status, r) = upload(&s, "alice", "image", bytes.clone()).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["ErrorCode"], 0, "{r}");
        assert_eq!(r["ImageFormat"], code, "{r}");
        assert_eq!(r["Size"], bytes.len(), "{r}");
        let uuid = r["UUID"].as_str().unwrap();
        assert_eq!(r["URL"], format!("{}/v1/media/{uuid}", s.base_url()));
        let infos = r["ImageInfoArray"].as_array().unwrap();
        let dims: Vec<_> = infos
            .iter()
            .map(|i| (i["Type"].as_u64().unwrap(), i["Width"].as_u64().unwrap(), i["Height"].as_u64().unwrap()))
            .collect();
        assert_eq!(dims, vec![(1, 1500, 1000), (2, 720, 480), (3, 198, 132)]);
        for info in infos {
            let (status, got_mime, body) = download(&s, Some("alice"), info["URL"].as_str().unwrap()).await;
            assert_eq!(status, 200);
            assert_eq!(got_mime.as_deref(), Some(mime));
            assert_eq!(body.len() as u64, info["Size"].as_u64().unwrap(), "Size is the rendition's bytes");
            assert_eq!(image::guess_format(&body).unwrap(), format);
            let img = image::load_from_memory(&body).expect("the rendition decodes");
            assert_eq!(
                (u64::from(img.width()), u64::from(img.height())),
                (info["Width"].as_u64().unwrap(), info["Height"].as_u64().unwrap())
            );
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn small_images_keep_their_size_and_non_images_are_refused() {
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    let mut small = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::new(100, 60)).write_to(&mut Cursor::new(&mut small), ImageFormat::Gif).unwrap();
    let (status, r) = upload(&s, "alice", "image", small).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["ImageFormat"], 2);
    for info in r["ImageInfoArray"].as_array().unwrap() {
        assert_eq!((info["Width"].as_u64(), info["Height"].as_u64()), (Some(100), Some(60)), "never enlarged");
    }

    let (status, r) = upload(&s, "alice", "image", "plain text, named .png".to_owned()).await;
    assert_eq!((status, r["ErrorCode"].as_u64()), (415, Some(6031)), "{r}");
    let (status, r) = upload(&s, "alice", "file", Vec::new()).await;
    assert_eq!((status, r["ErrorCode"].as_u64()), (400, Some(7006)), "{r}");
    let (status, r) = upload(&s, "alice", "pdf", b"x".to_vec()).await;
    assert_eq!(status, 400, "{r}");
    let only_the_gif = stored_files(&s.config.media.dir);
    assert_eq!(only_the_gif.len(), 1, "refused uploads leave nothing: {only_the_gif:?}");

    let url = format!("{}/v1/media?type=file&identifier=alice&usersig=nope", s.base_url());
    let resp = reqwest::Client::new().post(url).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["ErrorCode"], 70003);
    s.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_and_nothing_is_kept() {
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    for (kind, limit) in [("image", 28 * MB), ("file", 100 * MB)] {
        let (status, r) = upload(&s, "alice", kind, zeros(limit + 1)).await;
        assert_eq!((status, r["ErrorCode"].as_u64()), (413, Some(7005)), "{kind}: {r}");
        assert!(stored_files(&s.config.media.dir).is_empty(), "{kind}: nothing is kept");
    }
    // A declared Content-Length over the limit is refused before the body is read.
    let url = format!("{}/v1/media?type=sound&{}", s.base_url(), auth(&s, "alice"));
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-length", (28 * MB + 1).to_string())
        .body(zeros(28 * MB + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.json::<Value>().await.unwrap()["ErrorCode"], 7005);

    // Exactly at the limit is fine, and the limits are configurable.
    let (status, r) = upload(&s, "alice", "sound", zeros(28 * MB)).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["Size"], 28 * MB);
    let s = s.restart_with(|c| c.media.limits.file = 1000).await;
    let (status, r) = upload(&s, "alice", "file", zeros(1001)).await;
    assert_eq!((status, r["ErrorCode"].as_u64()), (413, Some(7005)), "{r}");
    s.stop().await;
}

#[tokio::test]
async fn only_the_two_sides_and_the_admin_may_download() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob", "carol"]).await;
    let (_, up) = upload(&s, "alice", "image", picture(ImageFormat::Png)).await;
    let url = up["URL"].as_str().unwrap().to_owned();
    assert_eq!(download(&s, Some("bob"), &url).await.0, 403, "not shared yet");
    assert_eq!(download(&s, Some("alice"), &url).await.0, 200, "the uploader");
    assert_eq!(download(&s, Some(ADMIN), &url).await.0, 200, "the admin");

    let r = send(&s, "alice", "bob", 1, image_elem(&up)).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(download(&s, Some("bob"), &url).await.0, 200, "the recipient, after the send");
    assert_eq!(download(&s, Some("bob"), &format!("{url}/thumb")).await.0, 200);
    let (status, _, body) = download(&s, Some("carol"), &url).await;
    assert_eq!(status, 403);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["ErrorCode"], 6006, "{body}");
    assert_eq!(download(&s, None, &url).await.0, 401, "no credentials");

    // Basic auth works as the query does.
    let resp = reqwest::Client::new().get(&url).basic_auth("bob", Some(s.usersig("bob"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(download(&s, Some("bob"), &format!("{}/v1/media/{}", s.base_url(), "0".repeat(32))).await.0, 404);

    // The admin may share any file, and sharing grants the message's two sides.
    assert_eq!(send(&s, "carol", "bob", 2, image_elem(&up)).await["ErrorCode"], 0);
    assert_eq!(download(&s, Some("carol"), &url).await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_deleted_account_registered_again_reads_nothing_of_the_old_one() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let (_, up) = upload(&s, "alice", "image", picture(ImageFormat::Png)).await;
    let url = up["URL"].as_str().unwrap().to_owned();
    assert_eq!(send(&s, "alice", "bob", 1, image_elem(&up)).await["ErrorCode"], 0);
    assert_eq!(download(&s, Some("bob"), &url).await.0, 200);

    // Both the recipient and the uploader are deleted, then their UserIDs registered again.
    let body = json!({"DeleteItem": [{"UserID": "alice"}, {"UserID": "bob"}]});
    let r = s.rest("im_open_login_svc/account_delete", body).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    s.import(&["alice", "bob"]).await;
    assert_eq!(download(&s, Some("bob"), &url).await.0, 403, "the new bob was never granted the file");
    assert_eq!(download(&s, Some("alice"), &url).await.0, 403, "the new alice did not upload it");
    assert_eq!(download(&s, Some(ADMIN), &url).await.0, 200, "the admin still may");
    s.stop().await;
}

#[tokio::test]
async fn the_server_describes_its_own_images_and_keeps_unknown_ones() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let (_, up) = upload(&s, "alice", "image", picture(ImageFormat::Jpeg)).await;
    let forged = json!([{"MsgType": "TIMImageElem", "MsgContent": {"UUID": up["UUID"], "ImageFormat": 3,
        "ImageInfoArray": [{"Type": 1, "Size": 1, "Width": 9999, "Height": 1, "URL": "http://evil.example/x.png"}]}}]);
    assert_eq!(send(&s, "alice", "bob", 1, forged).await["ErrorCode"], 0);
    let foreign = json!([{"MsgType": "TIMImageElem", "MsgContent": {"UUID": "external-1", "ImageFormat": 1,
        "ImageInfoArray": [{"Type": 1, "Size": 5, "Width": 10, "Height": 20, "URL": "https://cdn.example/a.jpg"}]}}]);
    assert_eq!(send(&s, "alice", "bob", 2, foreign.clone()).await["ErrorCode"], 0);

    let roam = s
        .rest("openim/admin_getroammsg", json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 10, "MinTime": 0, "MaxTime": 4_000_000_000u64}))
        .await;
    let msgs = roam["MsgList"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{roam}");
    let ours = &msgs[0]["MsgBody"][0]["MsgContent"];
    assert_eq!(ours["ImageFormat"], 1, "{ours}");
    assert_eq!(ours["ImageInfoArray"], up["ImageInfoArray"], "the server's renditions replace the forged ones");
    assert_eq!(msgs[1]["MsgBody"], foreign, "an id Duet does not hold is kept as sent");
    s.stop().await;
}

#[tokio::test]
async fn media_goes_when_its_last_message_expires() {
    let s = TestServer::spawn_with(|c| c.purge_interval = Duration::from_millis(20)).await;
    s.import(&["alice", "bob"]).await;
    let (_, used) = upload(&s, "alice", "image", picture(ImageFormat::Png)).await;
    let (_, unused) = upload(&s, "alice", "file", b"never sent".to_vec()).await;
    assert_eq!(stored_files(&s.config.media.dir).len(), 4, "original, large, thumbnail, file");

    // Day 5: sent again, so its last use moves.
    s.clock.advance_secs(5 * 86_400);
    assert_eq!(send(&s, "alice", "bob", 1, image_elem(&used)).await["ErrorCode"], 0);
    // Day 7 + 1 s: the unsent file is past the retention; the image is not.
    s.clock.advance_secs(2 * 86_400 + 1);
    let url = |v: &Value| v["URL"].as_str().unwrap().to_owned();
    // The index forgets an item first, then its blobs go.
    wait_until(|| async { download(&s, Some("alice"), &url(&unused)).await.0 == 404 }).await;
    wait_until(|| async { stored_files(&s.config.media.dir).len() == 3 }).await;
    assert_eq!(download(&s, Some("bob"), &url(&used)).await.0, 200);

    // Day 12 + 1 s: the message referring to the image expired, and the image with it.
    s.clock.advance_secs(5 * 86_400);
    wait_until(|| async { download(&s, Some("alice"), &url(&used)).await.0 == 404 }).await;
    wait_until(|| async { stored_files(&s.config.media.dir).is_empty() }).await;
    s.stop().await;
}

/// Polls `done` until it holds, for at most 10 s.
async fn wait_until<F, Fut>(done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "condition not reached within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sound_file_and_video_elements_get_the_servers_urls_and_sizes() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let (_, sound) = upload(&s, "alice", "sound", vec![1u8; 3000]).await;
    let (_, file) = upload(&s, "alice", "file", vec![2u8; 4000]).await;
    let (_, video) = upload(&s, "alice", "video", vec![3u8; 5000]).await;
    let mut thumb = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::new(320, 180)).write_to(&mut Cursor::new(&mut thumb), ImageFormat::Jpeg).unwrap();
    let (_, thumb) = upload(&s, "alice", "image", thumb).await;
    let body = json!([
        {"MsgType": "TIMSoundElem", "MsgContent": {"UUID": sound["UUID"], "Url": "http://x/forged", "Size": 1, "Second": 4}},
        {"MsgType": "TIMFileElem", "MsgContent": {"UUID": file["UUID"], "Url": "http://x/forged", "FileSize": 1}},
        {"MsgType": "TIMVideoFileElem", "MsgContent": {"VideoUUID": video["UUID"], "VideoUrl": "http://x/v", "VideoSize": 1,
            "VideoSecond": 9, "VideoFormat": "mp4", "ThumbUUID": thumb["UUID"]}},
    ]);
    assert_eq!(send(&s, "alice", "bob", 1, body).await["ErrorCode"], 0);
    let roam = s
        .rest("openim/admin_getroammsg", json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 10, "MinTime": 0, "MaxTime": 4_000_000_000u64}))
        .await;
    let got = &roam["MsgList"][0]["MsgBody"];
    assert_eq!((&got[0]["MsgContent"]["Url"], &got[0]["MsgContent"]["Size"]), (&sound["URL"], &json!(3000)), "{got}");
    assert_eq!(got[0]["MsgContent"]["Second"], 4, "what only the client knows is kept");
    assert_eq!((&got[1]["MsgContent"]["Url"], &got[1]["MsgContent"]["FileSize"]), (&file["URL"], &json!(4000)));
    assert_eq!(got[1]["MsgContent"]["FileName"], "f.bin", "an empty FileName is filled from the upload");
    let v = &got[2]["MsgContent"];
    assert_eq!((&v["VideoUrl"], &v["VideoSize"]), (&video["URL"], &json!(5000)), "{v}");
    assert_eq!(
        (&v["ThumbUrl"], &v["ThumbWidth"], &v["ThumbHeight"], &v["ThumbFormat"]),
        (&thumb["URL"], &json!(320), &json!(180), &json!("JPG"))
    );
    for url in [&sound["URL"], &file["URL"], &video["URL"], &thumb["URL"]] {
        assert_eq!(download(&s, Some("bob"), url.as_str().unwrap()).await.0, 200, "{url}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_send_the_recipient_never_gets_grants_nothing() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let (_, up) = upload(&s, "alice", "image", picture(ImageFormat::Png)).await;
    let url = up["URL"].as_str().unwrap().to_owned();
    let mut alice = WsClient::login(&s, "alice").await;

    // Bob blacklisted alice: her send is dropped silently (answered as sent), and bob gets no access.
    let r = s.rest("sns/black_list_add", json!({"From_Account": "bob", "To_Account": ["alice"]})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = alice.send("bob", 1, image_elem(&up)).await;
    assert_eq!(r["op"], "sent", "{r}");
    assert_eq!(download(&s, Some("bob"), &url).await.0, 403, "a blocked sender's file stays hers");

    // A UserID nobody has registered yet: the send fails, and registering it later gives no access.
    let r = alice.send("dave", 2, image_elem(&up)).await;
    assert_eq!(r["op"], "error", "{r}");
    let r = send(&s, "alice", "erin", 3, image_elem(&up)).await;
    assert_ne!(r["ErrorCode"], 0, "{r}");
    let r = s
        .rest(
            "openim/batchsendmsg",
            json!({"From_Account": "alice", "To_Account": ["bob", "frank"],
            "MsgRandom": 4, "MsgBody": image_elem(&up)}),
        )
        .await;
    assert_eq!(r["ActionStatus"], "SomeError", "{r}");
    s.import(&["dave", "erin", "frank"]).await;
    for late in ["dave", "erin", "frank"] {
        assert_eq!(download(&s, Some(late), &url).await.0, 403, "{late} registered after the send");
    }
    // The admin's batch send reached bob (no permission policy for the admin): he may read it now.
    assert_eq!(download(&s, Some("bob"), &url).await.0, 200);

    // Once unblocked, alice's own send grants as before.
    let (_, up2) = upload(&s, "alice", "file", b"second".to_vec()).await;
    let file =
        json!([{"MsgType": "TIMFileElem", "MsgContent": {"UUID": up2["UUID"], "Url": up2["URL"], "FileSize": 6}}]);
    let r = s.rest("sns/black_list_delete", json!({"From_Account": "bob", "To_Account": ["alice"]})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(alice.send("bob", 5, file).await["op"], "sent");
    assert_eq!(download(&s, Some("bob"), up2["URL"].as_str().unwrap()).await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn friends_only_refusals_grant_nothing() {
    let s = TestServer::spawn_with(|c| c.core.permissions.friends_only = true).await;
    s.import(&["alice", "bob"]).await;
    let (_, up) = upload(&s, "alice", "image", picture(ImageFormat::Png)).await;
    let mut alice = WsClient::login(&s, "alice").await;
    let r = alice.send("bob", 1, image_elem(&up)).await;
    assert_eq!((&r["op"], &r["code"]), (&json!("error"), &json!(20009)), "{r}");
    assert_eq!(download(&s, Some("bob"), up["URL"].as_str().unwrap()).await.0, 403);
    s.stop().await;
}

#[tokio::test]
async fn urls_come_from_the_configuration_or_the_senders_own_request_never_from_an_upload() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    // An upload through a forged Host gets URLs on that host in its own answer...
    let url = format!("{}/v1/media?type=file&filename=a.txt&{}", s.base_url(), auth(&s, "alice"));
    let resp = reqwest::Client::new().post(url).header("host", "evil.example").body("hello").send().await.unwrap();
    let up: Value = resp.json().await.unwrap();
    let uuid = up["UUID"].as_str().unwrap();
    assert_eq!(up["URL"], format!("http://evil.example/v1/media/{uuid}"), "{up}");
    // ...but a message sent through the real address carries the real address.
    let body = json!([{"MsgType": "TIMFileElem", "MsgContent": {"UUID": uuid, "Url": "x", "FileSize": 1}}]);
    assert_eq!(send(&s, "alice", "bob", 1, body.clone()).await["ErrorCode"], 0);
    let roam = s
        .rest("openim/admin_getroammsg", json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 10, "MinTime": 0, "MaxTime": 4_000_000_000u64}))
        .await;
    let sent = &roam["MsgList"][0]["MsgBody"][0]["MsgContent"]["Url"];
    assert_eq!(sent, &json!(format!("{}/v1/media/{uuid}", s.base_url())), "{roam}");
    // A Host that is not a plain host[:port] is not used at all.
    let url = format!("{}/v1/media?type=file&{}", s.base_url(), auth(&s, "alice"));
    let resp = reqwest::Client::new().post(url).header("host", "a.example/x?y").body("hi").send().await.unwrap();
    let up: Value = resp.json().await.unwrap();
    assert!(up["URL"].as_str().unwrap().starts_with("http://localhost/v1/media/"), "{up}");

    // With `public_url`, every URL starts with it, whatever the Host.
    let s = s.restart_with(|c| c.media.public_url = Some("https://im.example.com/".into())).await;
    let url = format!("{}/v1/media?type=file&{}", s.base_url(), auth(&s, "alice"));
    let resp = reqwest::Client::new().post(url).header("host", "evil.example").body("hello").send().await.unwrap();
    let up: Value = resp.json().await.unwrap();
    assert_eq!(up["URL"], format!("https://im.example.com/v1/media/{}", up["UUID"].as_str().unwrap()), "{up}");
    assert_eq!(send(&s, "alice", "bob", 2, body).await["ErrorCode"], 0);
    let roam = s
        .rest("openim/admin_getroammsg", json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 10, "MinTime": 0, "MaxTime": 4_000_000_000u64}))
        .await;
    let urls: Vec<_> =
        roam["MsgList"].as_array().unwrap().iter().map(|m| m["MsgBody"][0]["MsgContent"]["Url"].clone()).collect();
    assert!(urls.contains(&json!(format!("https://im.example.com/v1/media/{uuid}"))), "{roam}");
    s.stop().await;
}

#[tokio::test]
async fn downloads_say_what_they_are_and_are_never_sniffed() {
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    // An image named like something else is served as what its bytes are, inline.
    let (_, img) = upload(&s, "alice", "image", picture(ImageFormat::Png)).await;
    // A file named like an image is not served as one, and is an attachment under its own name.
    let url = format!("{}/v1/media?type=file&filename=caf%C3%A9%20%22menu%22.png&{}", s.base_url(), auth(&s, "alice"));
    let file: Value = reqwest::Client::new().post(url).body("<svg/>").send().await.unwrap().json().await.unwrap();
    let get = |url: String| {
        let q = auth(&s, "alice");
        async move { reqwest::get(format!("{url}?{q}")).await.unwrap() }
    };
    let r = get(img["URL"].as_str().unwrap().to_owned()).await;
    let h = r.headers();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-disposition"], "inline");
    let r = get(file["URL"].as_str().unwrap().to_owned()).await;
    let h = r.headers();
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"caf_ _menu_.png\"; filename*=UTF-8''caf%C3%A9%20%22menu%22.png"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_nothing_on_disk() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    let dir = s.config.media.dir.clone();
    for kind in ["file", "image"] {
        let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST /v1/media?type={kind}&{} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            auth(&s, "alice"),
            s.addr,
            10 * MB
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        // Part of the body, until the server has started writing it to disk.
        let mut sent = 0;
        while stored_files(&dir).is_empty() {
            tcp.write_all(&ZEROS).await.unwrap();
            sent += ZEROS.len() as u64;
            assert!(sent < 10 * MB, "the server never started storing the upload");
        }
        drop(tcp);
        wait_until(|| async { stored_files(&dir).is_empty() }).await;
    }
    s.stop().await;
}

/// An HTTP/2 frame: length, type, flags, stream, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK header block of literal fields without indexing (no Huffman).
fn hpack(headers: &[(&str, &str)]) -> Vec<u8> {
    fn int(out: &mut Vec<u8>, mut n: usize) {
        if n < 127 {
            out.push(n as u8);
            return;
        }
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(0);
        int(&mut out, name.len());
        out.extend_from_slice(name.as_bytes());
        int(&mut out, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// The handler of an upload whose HTTP/2 stream is reset is dropped at once, mid-body: what it had
/// written goes all the same.
#[tokio::test]
async fn an_upload_whose_stream_is_reset_leaves_nothing_on_disk() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    let dir = s.config.media.dir.clone();
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    tcp.write_all(&h2_frame(0x4, 0, 0, &[])).await.unwrap();
    let path = format!("/v1/media?type=file&{}", auth(&s, "alice"));
    let authority = s.addr.to_string();
    let block = hpack(&[(":method", "POST"), (":scheme", "http"), (":path", &path), (":authority", &authority)]);
    tcp.write_all(&h2_frame(0x1, 0x4, 1, &block)).await.unwrap();
    tcp.write_all(&h2_frame(0x0, 0, 1, &ZEROS[..16_000])).await.unwrap();
    wait_until(|| async { !stored_files(&dir).is_empty() }).await;
    // RST_STREAM, CANCEL; the connection stays open.
    tcp.write_all(&h2_frame(0x3, 0, 1, &8u32.to_be_bytes())).await.unwrap();
    wait_until(|| async { stored_files(&dir).is_empty() }).await;
    drop(tcp);
    s.stop().await;
}

/// A client that sends a whole image and hangs up while the server renders it: the server drops the
/// request's handler in the middle of rendering, after the original was stored. The original (and any
/// rendition written) goes all the same.
#[tokio::test]
async fn an_image_upload_dropped_while_rendering_leaves_nothing_on_disk() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    let dir = s.config.media.dir.clone();
    // Large enough that rendering it takes a while.
    let img = RgbImage::from_fn(3000, 2000, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 9]));
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /v1/media?type=image&{} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        auth(&s, "alice"),
        s.addr,
        png.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&png).await.unwrap();
    // The original is in place (the bare UUID, not under tmp/): the server is rendering.
    let in_place = |p: &std::path::PathBuf| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.len() == 32 && !name.contains('.') && !p.parent().unwrap().ends_with("tmp")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !walk(&dir).iter().any(in_place) {
        assert!(tokio::time::Instant::now() < deadline, "the original was never stored");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(tcp);
    wait_until(|| async { stored_files(&dir).is_empty() }).await;
    s.stop().await;
}

/// A web app on another origin may upload and download: the credentials are in the query, never in
/// cookies, so every media answer allows any origin, and a preflight names the methods and the header.
#[tokio::test]
async fn media_answers_allow_a_web_app_on_another_origin() {
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    let client = reqwest::Client::new();
    for path in ["/v1/media", "/v1/media/some-uuid", "/v1/media/some-uuid/thumb"] {
        let preflight = client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", s.base_url()))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204, "{path}");
        let h = |name: &str| preflight.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(h("access-control-allow-origin").as_deref(), Some("*"), "{path}");
        assert!(h("access-control-allow-methods").is_some_and(|m| m.contains("POST") && m.contains("GET")));
        assert!(
            h("access-control-allow-headers")
                .is_some_and(|m| m.contains("Content-Type") && m.contains("Authorization"))
        );
    }
    let url = format!("{}/v1/media?type=file&filename=f.bin&{}", s.base_url(), auth(&s, "alice"));
    let up = client.post(url).header("origin", "https://app.example").body("hello").send().await.unwrap();
    assert_eq!(up.status(), 200);
    assert_eq!(up.headers()["access-control-allow-origin"], "*");
    let answer: Value = up.json().await.unwrap();
    let file = answer["URL"].as_str().expect("the upload's URL").to_owned();
    let down = client.get(format!("{file}?{}", auth(&s, "alice"))).send().await.unwrap();
    assert_eq!(down.status(), 200);
    assert_eq!(down.headers()["access-control-allow-origin"], "*");
    // A refusal too, so the app can read why.
    let refused = client.get(&file).send().await.unwrap();
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
}
