//! Rich media through the SDK against the real server: `create_*_message` uploads with progress and
//! returns elements ready to send; the recipient downloads what it received; a third user cannot.

mod common;

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use common::*;
use duet_client::{MsgElem, Platform, SendOptions};
use duet_test_support::TestServer;
use image::{DynamicImage, ImageFormat, RgbImage};

/// Every `(done, total)` a progress callback saw.
type Log = Arc<Mutex<Vec<(u64, u64)>>>;

fn progress_log() -> (Log, impl Fn(u64, u64) + Send + Sync + 'static) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    (log, move |done, total| sink.lock().unwrap().push((done, total)))
}

/// Progress went from 0 to `total`, never backwards.
fn assert_progress(log: &[(u64, u64)], total: u64) {
    assert!(log.len() >= 2, "progress was reported: {log:?}");
    assert_eq!(log.first(), Some(&(0, total)));
    assert_eq!(log.last(), Some(&(total, total)));
    assert!(log.windows(2).all(|w| w[0].0 <= w[1].0), "progress never goes back: {log:?}");
}

#[tokio::test]
async fn images_and_files_upload_with_progress_and_the_recipient_downloads_them() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol"]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = |user: &str| config(&server.base_url(), user, &server.usersig(user), Platform::Linux);
    let (alice, _alice_events, _) = connect_synced(cfg("alice")).await;
    let (bob, mut bob_events, _) = connect_synced(cfg("bob")).await;
    let (carol, _carol_events, _) = connect_synced(cfg("carol")).await;

    let png = dir.path().join("cat.png");
    let img = RgbImage::from_fn(1000, 800, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png).unwrap();
    std::fs::write(&png, &bytes).unwrap();

    let (log, progress) = progress_log();
    let elem = alice.create_image_message(&png, progress).await.expect("uploading the image");
    assert_progress(&log.lock().unwrap(), bytes.len() as u64);
    let MsgElem::Image(image) = &elem else { panic!("an image element: {elem:?}") };
    assert_eq!(image.image_format, 3);
    let dims: Vec<_> = image.image_info_array.iter().map(|i| (i.kind, i.width, i.height)).collect();
    assert_eq!(dims, vec![(1, 1000, 800), (2, 720, 576), (3, 198, 158)]);

    // 3 MB file: several chunks of progress.
    let big = dir.path().join("notes.bin");
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &data).unwrap();
    let (log, progress) = progress_log();
    let file = alice.create_file_message(&big, progress).await.expect("uploading the file");
    assert_progress(&log.lock().unwrap(), data.len() as u64);
    let MsgElem::File(f) = &file else { panic!("a file element: {file:?}") };
    assert_eq!((f.file_size, f.file_name.as_str()), (data.len() as u64, "notes.bin"));

    alice.send_message("bob", vec![elem.clone(), file.clone()], SendOptions::default()).await.expect("sending");
    let got = next_message(&mut bob_events).await;
    let MsgElem::File(received) = &got.elems[1] else { panic!("{:?}", got.elems) };
    let out = dir.path().join("received.bin");
    let (log, progress) = progress_log();
    let n = bob.download(&received.url, &out, progress).await.expect("bob downloads");
    assert_eq!(n, data.len() as u64);
    assert_progress(&log.lock().unwrap(), data.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let MsgElem::Image(received) = &got.elems[0] else { panic!("{:?}", got.elems) };
    let thumb = dir.path().join("thumb.png");
    bob.download(&format!("{}/thumb", image.uuid), &thumb, |_, _| {}).await.expect("by UUID");
    let decoded = image::open(&thumb).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (198, 158));
    assert_eq!(received.image_info_array, image.image_info_array);

    // Carol was not part of it: she can neither download nor pass the file on.
    let e = carol.download(&received.image_info_array[0].url, dir.path().join("x"), |_, _| {}).await.unwrap_err();
    assert_eq!(e.code(), Some(6006), "{e}");
    assert!(!dir.path().join("x").exists() && !dir.path().join("x.part").exists());
    let e = carol.send_message("bob", vec![elem.clone()], SendOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(90010), "{e}");

    // A media send followed at once by a text keeps its place: the upload lookup does not reorder them.
    let (first, second) = tokio::join!(
        alice.send_message("bob", vec![elem], SendOptions::default()),
        alice.send_text("bob", "after the picture")
    );
    assert!(first.unwrap().conv_seq < second.unwrap().conv_seq);
    assert!(matches!(next_message(&mut bob_events).await.elems[0], MsgElem::Image(_)));
    assert_eq!(next_message(&mut bob_events).await.text(), "after the picture");

    // Refusals keep Tencent's codes.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(alice.create_file_message(&empty, |_, _| {}).await.unwrap_err().code(), Some(7006));
    assert_eq!(alice.create_image_message(&big, |_, _| {}).await.unwrap_err().code(), Some(6031));
    server.stop().await;
}
