//! `duet client`: a terminal client on the Rust SDK. `listen` prints every event as one JSON line;
//! `send`, `history` and `conversations` do one thing and print JSON; `chat` is an interactive session
//! with one peer. `send --image/--file/--sound/--video` uploads with a progress bar first; `fetch`
//! downloads a message's media to a file.
//!
//! Only `listen` logs in as a device of the user. The one-shot commands log in as transient sessions
//! (`docs/protocol.md`, *Transient sessions*), `chat` as a live one, and `fetch` does not log in at all
//! (one HTTP download): none of them logs out the user's `listen`, app or other terminals.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use duet_client::{
    Client, ClientConfig, ConnectionState, Conversation, Event, Events, LocalStoreConfig, Message, MsgElem, Platform,
    PushConfig, SendOptions, SessionKind, elems,
};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::{Failure, usage};

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// The server's base URL, the same the REST API uses (e.g. http://127.0.0.1:7080)
    #[arg(long, env = "DUET_SERVER")]
    server: String,
    /// The UserID to log in as
    #[arg(long, env = "DUET_USER")]
    user: String,
    /// A UserSig for that user (`duet usersig --user ID`)
    #[arg(long, env = "DUET_USERSIG", hide_env_values = true)]
    usersig: String,
    /// The platform to log in from: iPhone, Android, iPad, PC, Mac, Linux or Web
    #[arg(long, default_value = "Linux")]
    platform: String,
    /// A stable device id (default: a random one per run)
    #[arg(long)]
    device: Option<String>,
    /// A directory for the local store (SQLite); default: in memory, so each run syncs from the start
    #[arg(long)]
    store: Option<PathBuf>,
    /// Also trust this CA certificate (PEM) for an https:// server, besides the system's roots
    #[arg(long, env = "DUET_CA_CERT")]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Subcommand, Debug)]
enum ClientCommand {
    /// Print every event as one JSON line: offline messages, conversations, sync complete, live messages.
    /// The one command that logs in as a device of the user (the multi-device policy applies to it)
    Listen,
    /// Send one message and print the server's answer
    Send(Box<SendArgs>),
    /// Print a page of the conversation with a peer, newest first, one JSON message per line
    History {
        #[arg(long)]
        peer: String,
        #[arg(long, default_value_t = 20)]
        count: u32,
        /// Older than this MsgKey
        #[arg(long)]
        before: Option<String>,
    },
    /// Print the recent contacts, latest first, one JSON line each
    Conversations,
    /// Mark what a peer sent so far as read, on every device (the peer's devices get a read receipt)
    MarkRead {
        #[arg(long)]
        peer: String,
    },
    /// Recall a message you sent (within the server's recall window: 2 minutes by default)
    Recall {
        #[arg(long)]
        peer: String,
        /// The message's MsgKey
        #[arg(long)]
        key: String,
    },
    /// Edit a message you sent (its text, or its custom data, or both); prints the message as edited.
    /// Both sides' devices are told
    Edit {
        #[arg(long)]
        peer: String,
        /// The message's MsgKey
        #[arg(long)]
        key: String,
        /// The new text (the message becomes one text element)
        #[arg(long)]
        text: Option<String>,
        /// The new CloudCustomData
        #[arg(long)]
        custom_data: Option<String>,
        /// The version you saw (from `history` or `find`): someone else's edit since is refused (20028)
        #[arg(long)]
        version: Option<u32>,
    },
    /// Delete messages from your side of a conversation (the peer keeps them), on all your devices;
    /// prints the keys deleted
    Delete {
        #[arg(long)]
        peer: String,
        /// A MsgKey (repeatable, at most 50)
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// Clear your history of a conversation (the peer keeps it); the conversation stays, on all your devices
    ClearHistory {
        #[arg(long)]
        peer: String,
    },
    /// Delete a conversation from your list, on all your devices (with --clear-history, its history too)
    DeleteConversation {
        #[arg(long)]
        peer: String,
        #[arg(long)]
        clear_history: bool,
    },
    /// Set your do-not-disturb window over all conversations (no push to your phones while it is on), or
    /// with no flags print it
    Dnd {
        /// 0 off, 1 do not receive, 2 receive without notification
        #[arg(long)]
        receive_opt: Option<u8>,
        /// Every day from this second after midnight UTC (0-86399)
        #[arg(long)]
        start_of_day: Option<u32>,
        /// Once, from this unix second
        #[arg(long)]
        start_time: Option<i64>,
        /// How long, in seconds (0: no end)
        #[arg(long, default_value_t = 0)]
        duration: u32,
    },
    /// Tell a peer's live devices that you are typing (with --stop: that you stopped); nothing is stored
    Typing {
        #[arg(long)]
        peer: String,
        #[arg(long)]
        stop: bool,
    },
    /// Change your settings of a conversation, on all your devices: pin, marks, custom data, draft,
    /// receive option (what you leave out stays)
    SetConversation {
        #[arg(long)]
        peer: String,
        /// Pin (true) or unpin (false): pinned conversations are listed first
        #[arg(long)]
        pinned: Option<bool>,
        /// Mark bits to set (1 star, 2 unread, 4 fold, 8 hide; bits 32-63 the app's)
        #[arg(long, default_value_t = 0)]
        set_marks: u64,
        /// Mark bits to clear (after setting)
        #[arg(long, default_value_t = 0)]
        clear_marks: u64,
        /// The app's data about the conversation (at most 256 bytes)
        #[arg(long)]
        custom_data: Option<String>,
        /// The text being written (at most 10 KiB; "" removes it)
        #[arg(long)]
        draft: Option<String>,
        /// 0 receive, 1 do not receive, 2 receive without notification (no push, not in the unread total)
        #[arg(long)]
        receive_opt: Option<u8>,
    },
    /// Acknowledge messages a peer sent with --need-receipt (read receipts); prints the keys acknowledged
    Receipt {
        #[arg(long)]
        peer: String,
        /// A MsgKey (repeatable, at most 100)
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// Print messages of the conversation with a peer by MsgKey, as the server holds them now (recalled,
    /// read, receipt), one JSON line each (`null` for a key that names none)
    Find {
        #[arg(long)]
        peer: String,
        /// A MsgKey (repeatable, at most 100)
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// Search the user's own history on the server, newest first: one JSON line per message, then
    /// `{"cursor": …}` (give it to --cursor for the next page; null when there is no more)
    Search {
        /// A word or phrase the message's text holds (repeatable: every one must match)
        #[arg(long = "keyword")]
        keywords: Vec<String>,
        /// Only the conversation with this user
        #[arg(long)]
        peer: Option<String>,
        /// Only messages this user sent
        #[arg(long)]
        from: Option<String>,
        /// Only messages with an element of this MsgType, e.g. TIMTextElem, TIMImageElem (repeatable)
        #[arg(long = "type")]
        types: Vec<String>,
        /// Dated at or after this time (unix seconds)
        #[arg(long)]
        since: Option<i64>,
        /// Dated at or before this time (unix seconds)
        #[arg(long)]
        until: Option<i64>,
        /// Messages per page, 1 to 100 [default: 20]
        #[arg(long)]
        limit: Option<u32>,
        /// Where to go on: the cursor a previous search printed
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Chat with a peer in the terminal: type a line to send it, Ctrl-D to quit. What is shown is marked read
    Chat {
        #[arg(long)]
        peer: String,
    },
    /// Register this device (give --device) for offline push, then disconnect without logging out, as a
    /// phone whose app was swiped away: messages to the user reach the token until the device logs out.
    /// Logs in as a device of the user
    PushRegister {
        /// apns, fcm, huawei, honor, xiaomi, oppo, vivo, meizu or webhook
        #[arg(long)]
        provider: String,
        /// The token the maker's push service gave the app
        #[arg(long)]
        token: String,
        /// The app's id at the provider, where one app has several
        #[arg(long)]
        app_id: Option<String>,
        /// The language of the notifications' default texts (en, zh, ...)
        #[arg(long)]
        lang: Option<String>,
    },
    /// End this device's (give --device) push registration, and log it out
    PushUnregister,
    /// Download a message's media (its URL, or an upload's UUID, optionally with /large or /thumb) to a file.
    /// Plain HTTP: no login
    Fetch {
        /// The URL from a message element, or a UUID
        what: String,
        /// Where to write the file
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Args, Debug)]
struct SendArgs {
    #[arg(long)]
    to: String,
    /// A text element
    #[arg(long)]
    text: Option<String>,
    /// A face element: its index
    #[arg(long)]
    face: Option<i64>,
    /// A location element: latitude and longitude
    #[arg(long, num_args = 2, value_names = ["LAT", "LON"], allow_negative_numbers = true)]
    location: Option<Vec<f64>>,
    /// A custom element: its Data
    #[arg(long)]
    custom: Option<String>,
    /// Desc of a location or custom element
    #[arg(long, default_value = "")]
    desc: String,
    /// Data of a face element, Ext of a custom element
    #[arg(long, default_value = "")]
    data: String,
    /// Any element as Tencent's JSON, e.g. '{"MsgType":"TIMFileElem","MsgContent":{...}}' (repeatable)
    #[arg(long)]
    elem: Vec<String>,
    #[arg(long, default_value = "")]
    cloud_custom_data: String,
    /// Deliver only to live devices; store nothing
    #[arg(long)]
    online_only: bool,
    /// Ask the recipient for a read receipt of this message (`duet client receipt`)
    #[arg(long)]
    need_receipt: bool,
    /// An image to upload and send (JPEG, PNG or GIF; the server measures it and makes the renditions)
    #[arg(long)]
    image: Option<PathBuf>,
    /// A file to upload and send
    #[arg(long)]
    file: Option<PathBuf>,
    /// A voice clip to upload and send (give its length with --seconds)
    #[arg(long)]
    sound: Option<PathBuf>,
    /// A video to upload and send (give its length with --seconds, a snapshot with --thumb)
    #[arg(long)]
    video: Option<PathBuf>,
    /// The length of --sound or --video, in seconds
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// A snapshot image of --video
    #[arg(long)]
    thumb: Option<PathBuf>,
}

impl SendArgs {
    fn has_media(&self) -> bool {
        self.image.is_some() || self.file.is_some() || self.sound.is_some() || self.video.is_some()
    }
}

pub async fn run(args: ClientArgs) -> Result<(), Failure> {
    let platform = Platform::from_name(&args.platform)
        .ok_or_else(|| {
            anyhow!("unknown platform {:?}; use iPhone, Android, iPad, PC, Mac, Linux or Web", args.platform)
        })
        .map_err(usage)?;
    let session = match &args.command {
        ClientCommand::Listen | ClientCommand::PushRegister { .. } | ClientCommand::PushUnregister => {
            SessionKind::Device
        }
        ClientCommand::Chat { .. } => SessionKind::Transient { live: true },
        _ => SessionKind::Transient { live: false },
    };
    let mut config = ClientConfig::new(&args.server, &args.user, &args.usersig).platform(platform).session(session);
    if let Some(device) = &args.device {
        config = config.device(device.clone());
    }
    if let Some(dir) = &args.store {
        config = config.store(LocalStoreConfig::Sqlite(dir.clone()));
    }
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading the CA certificate {}", path.display()))?;
        config = config.trust_ca_pem(pem);
    }
    let elems = match &args.command {
        ClientCommand::Send(send) => send_elems(send).map_err(usage)?,
        ClientCommand::Fetch { what, output } => return Ok(fetch(&config, what, output).await?),
        _ => Vec::new(),
    };
    let registers = matches!(args.command, ClientCommand::PushRegister { .. } | ClientCommand::PushUnregister);
    if matches!(&args.command, ClientCommand::Edit { text: None, custom_data: None, .. }) {
        return Err(usage(anyhow!("edit needs --text or --custom-data (or both): what the message becomes")));
    }
    if registers && args.device.is_none() {
        return Err(usage(anyhow!("push-register and push-unregister need --device: a registration is a device's")));
    }
    let (client, events) = Client::connect(config).await.context("connecting")?;
    let result = match args.command {
        ClientCommand::Listen => listen(events).await,
        ClientCommand::Send(send) => {
            let mut elems = elems;
            let uploaded = upload_media(&client, &send).await?;
            let uploads: Vec<Value> = uploaded.iter().flat_map(upload_json).collect();
            elems.extend(uploaded);
            let opts = SendOptions {
                cloud_custom_data: send.cloud_custom_data,
                online_only: send.online_only,
                need_read_receipt: send.need_receipt,
                ..SendOptions::default()
            };
            let sent = client.send_message(&send.to, elems, opts).await.context("sending")?;
            let mut out = json!({"msg_key": sent.msg_key, "seq": sent.seq, "random": sent.random, "time": sent.time, "conv_seq": sent.conv_seq});
            if !uploads.is_empty() {
                out["uploads"] = Value::Array(uploads);
            }
            println!("{out}");
            Ok(())
        }
        ClientCommand::History { peer, count, before } => {
            for m in client.get_messages(&peer, count, before.as_deref()).await.context("fetching history")? {
                println!("{}", message_json(&m));
            }
            Ok(())
        }
        ClientCommand::Conversations => {
            for c in client.conversations().await.context("fetching conversations")? {
                println!("{}", conversation_json(&c));
            }
            Ok(())
        }
        ClientCommand::MarkRead { peer } => client.mark_read(&peer).await.context("marking read"),
        ClientCommand::Recall { peer, key } => client.recall(&peer, &key).await.context("recalling"),
        ClientCommand::Edit { peer, key, text, custom_data, version } => {
            let elems = text.map(|t| vec![duet_client::elems::text(t)]);
            let m = client.modify(&peer, &key, elems, custom_data.as_deref(), version).await.context("editing")?;
            println!("{}", message_json(&m));
            Ok(())
        }
        ClientCommand::Delete { peer, keys } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let deleted = client.delete_messages(&peer, &keys).await.context("deleting messages")?;
            println!("{}", json!({"deleted": deleted}));
            Ok(())
        }
        ClientCommand::SetConversation { peer, pinned, set_marks, clear_marks, custom_data, draft, receive_opt } => {
            let change =
                duet_client::ConversationChange { pinned, set_marks, clear_marks, custom_data, draft, receive_opt };
            client.update_conversation(&peer, change).await.context("changing the conversation's settings")
        }
        ClientCommand::Dnd { receive_opt: None, .. } => {
            let d = client.dnd().await.context("reading the do-not-disturb window")?;
            let json = json!({"receive_opt": d.receive_opt, "start_of_day": d.start_of_day,
                "start_time": d.start_time, "duration": d.duration});
            println!("{json}");
            Ok(())
        }
        ClientCommand::Dnd { receive_opt: Some(receive_opt), start_of_day, start_time, duration } => {
            let dnd = duet_client::DndSetting { receive_opt, start_of_day, start_time, duration };
            client.set_dnd(dnd).await.context("setting the do-not-disturb window")
        }
        ClientCommand::Typing { peer, stop } => client.send_typing(&peer, !stop).await.context("sending typing"),
        ClientCommand::ClearHistory { peer } => client.clear_history(&peer).await.context("clearing history"),
        ClientCommand::DeleteConversation { peer, clear_history } => {
            client.delete_conversation(&peer, clear_history).await.context("deleting the conversation")
        }
        ClientCommand::Receipt { peer, keys } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let acknowledged = client.send_read_receipts(&peer, &keys).await.context("sending read receipts")?;
            println!("{}", json!({"acknowledged": acknowledged}));
            Ok(())
        }
        ClientCommand::Find { peer, keys } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            for m in client.find_messages(&peer, &keys).await.context("finding messages")? {
                println!("{}", m.as_ref().map_or(Value::Null, message_json));
            }
            Ok(())
        }
        ClientCommand::Search { keywords, peer, from, types, since, until, limit, cursor } => {
            let query = duet_client::SearchQuery { keywords, peer, from, types, since, until, limit, cursor };
            let page = client.search_messages(query).await.context("searching")?;
            for m in &page.messages {
                println!("{}", message_json(m));
            }
            println!("{}", json!({"cursor": page.cursor}));
            Ok(())
        }
        ClientCommand::Chat { peer } => chat(&client, events, &peer).await,
        ClientCommand::PushRegister { provider, token, app_id, lang } => {
            let config = PushConfig { provider, token, app_id, lang };
            client.set_offline_push_config(config).await.context("registering for push")?;
            println!("{}", json!({"registered": true}));
            // Away without logging out: a logout would end the registration.
            drop(client);
            return Ok(());
        }
        ClientCommand::PushUnregister => {
            client.clear_offline_push_config().await.context("ending the push registration")
        }
        ClientCommand::Fetch { .. } => unreachable!("fetch returned above, without logging in"),
    };
    let _ = client.logout().await;
    Ok(result?)
}

/// `fetch`: one authenticated HTTP download, no login.
async fn fetch(config: &ClientConfig, what: &str, output: &std::path::Path) -> anyhow::Result<()> {
    let bar = progress_bar(&format!("downloading {what}"));
    let size = duet_client::media::download(config, what, output, progress(&bar)).await.context("downloading")?;
    bar.finish_and_clear();
    println!("{}", json!({"file": output.display().to_string(), "size": size}));
    Ok(())
}

/// What `send` prints of an uploaded element: its type, UUID and URL (a video's thumbnail is an image).
fn upload_json(elem: &MsgElem) -> Vec<Value> {
    let one = |kind: &str, uuid: &str, url: &str| json!({"type": kind, "uuid": uuid, "url": url});
    match elem {
        MsgElem::Image(i) => {
            let original = i.image_info_array.iter().find(|info| info.kind == 1).or(i.image_info_array.first());
            vec![one("image", &i.uuid, original.map_or("", |o| o.url.as_str()))]
        }
        MsgElem::Sound(s) => vec![one("sound", &s.uuid, &s.url)],
        MsgElem::File(f) => vec![one("file", &f.uuid, &f.url)],
        MsgElem::Video(v) => {
            let mut out = vec![one("video", &v.video_uuid, &v.video_url)];
            if !v.thumb_uuid.is_empty() {
                out.push(one("image", &v.thumb_uuid, &v.thumb_url));
            }
            out
        }
        _ => Vec::new(),
    }
}

fn send_elems(send: &SendArgs) -> anyhow::Result<Vec<MsgElem>> {
    let mut out = Vec::new();
    if let Some(text) = &send.text {
        out.push(elems::text(text.clone()));
    }
    if let Some(index) = send.face {
        out.push(elems::face(index, send.data.clone()));
    }
    if let Some(loc) = &send.location {
        out.push(elems::location(send.desc.clone(), loc[0], loc[1]));
    }
    if let Some(data) = &send.custom {
        out.push(elems::custom(data.clone(), send.desc.clone(), send.data.clone()));
    }
    for raw in &send.elem {
        out.push(serde_json::from_str(raw).with_context(|| format!("--elem {raw:?} is not a message element"))?);
    }
    if out.is_empty() && !send.has_media() {
        bail!(
            "nothing to send: give --text, --face, --location, --custom, --elem, --image, --file, --sound or --video"
        );
    }
    if send.thumb.is_some() && send.video.is_none() {
        bail!("--thumb goes with --video");
    }
    Ok(out)
}

/// Uploads the files `send` names, each with a progress bar on stderr, and returns their elements.
async fn upload_media(client: &Client, send: &SendArgs) -> anyhow::Result<Vec<MsgElem>> {
    let mut out = Vec::new();
    if let Some(path) = &send.image {
        let bar = progress_bar(&format!("uploading {}", path.display()));
        out.push(client.create_image_message(path, progress(&bar)).await.context("uploading the image")?);
        bar.finish_and_clear();
    }
    if let Some(path) = &send.sound {
        let bar = progress_bar(&format!("uploading {}", path.display()));
        out.push(client.create_sound_message(path, send.seconds, progress(&bar)).await.context("uploading the sound")?);
        bar.finish_and_clear();
    }
    if let Some(path) = &send.video {
        let bar = progress_bar(&format!("uploading {}", path.display()));
        let elem = client.create_video_message(path, send.seconds, send.thumb.as_deref(), progress(&bar)).await;
        out.push(elem.context("uploading the video")?);
        bar.finish_and_clear();
    }
    if let Some(path) = &send.file {
        let bar = progress_bar(&format!("uploading {}", path.display()));
        out.push(client.create_file_message(path, progress(&bar)).await.context("uploading the file")?);
        bar.finish_and_clear();
    }
    Ok(out)
}

/// A byte progress bar on stderr (drawn only when stderr is a terminal).
fn progress_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message.to_owned());
    bar
}

/// The SDK's progress callback, moving `bar`.
fn progress(bar: &ProgressBar) -> impl Fn(u64, u64) + Send + Sync + 'static {
    let bar = bar.clone();
    move |done, total| {
        if total > 0 {
            bar.set_length(total);
        }
        bar.set_position(done);
    }
}

/// Prints events until the session ends (logout elsewhere, kick, expired UserSig) or Ctrl-C.
async fn listen(mut events: Events) -> anyhow::Result<()> {
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(event) = event else { return Ok(()) };
        println!("{}", event_json(&event));
        match event {
            Event::Kicked { code, info } => bail!("kicked offline ({code}): {info}"),
            Event::SigExpired => bail!("the UserSig expired"),
            _ => {}
        }
    }
}

async fn chat(client: &Client, mut events: Events, peer: &str) -> anyhow::Result<()> {
    let mut recent = client.get_messages(peer, 20, None).await.context("fetching history")?;
    recent.reverse();
    for m in &recent {
        println!("{}", chat_line(m));
    }
    if recent.iter().any(|m| m.from == peer) {
        mark_read(client, peer).await;
    }
    // The catch-up after login raises offline messages again as new messages: show each once.
    let mut shown: std::collections::HashSet<String> = recent.into_iter().map(|m| m.msg_key).collect();
    eprintln!("-- chatting with {peer}; type a message and Enter to send, Ctrl-D to quit");
    let mut lines = stdin_lines();
    let mut lost = false;
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                None => return Ok(()),
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                Some(Ok(line)) if line.trim().is_empty() => {}
                Some(Ok(line)) => {
                    let sent = client.send_text(peer, &line).await.context("sending")?;
                    println!("[{}] {}: {}", clock(sent.time), client.user(), line);
                }
            },
            event = events.recv() => match event {
                None => bail!("the session ended"),
                Some(Event::NewMessage(m)) if m.peer(client.user()) == peer => {
                    if shown.insert(m.msg_key.clone()) {
                        println!("{}", chat_line(&m));
                        if m.from == peer {
                            mark_read(client, peer).await;
                        }
                    }
                }
                Some(Event::Kicked { code, info }) => bail!("kicked offline ({code}): {info}"),
                Some(Event::SigExpired) => bail!("the UserSig expired; get a new one (`duet usersig`)"),
                Some(Event::Connection(ConnectionState::Disconnected { reason })) => {
                    lost = true;
                    eprintln!("-- connection lost ({reason}); reconnecting");
                }
                Some(Event::Connection(ConnectionState::Connected)) if lost => {
                    lost = false;
                    eprintln!("-- connected again");
                }
                Some(_) => {}
            },
        }
    }
}

/// Marks what `peer` sent as read; a failure is told, not fatal.
async fn mark_read(client: &Client, peer: &str) {
    if let Err(e) = client.mark_read(peer).await {
        eprintln!("-- could not mark the conversation read: {e}");
    }
}

/// The terminal's lines, read on a thread of their own: a read blocked on the terminal must not keep the
/// process from ending on a kick (Tokio's stdin reads on its blocking pool, which the runtime waits for).
fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<std::io::Result<String>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let failed = line.is_err();
            if tx.send(line).is_err() || failed {
                break;
            }
        }
    });
    rx
}

fn chat_line(m: &Message) -> String {
    let text = if m.recalled { "(recalled)".to_owned() } else { describe(&m.elems) };
    let who = if m.sender.nick.is_empty() { m.from.clone() } else { format!("{} ({})", m.sender.nick, m.from) };
    let system = if m.sender.system { " [system]" } else { "" };
    format!("[{}] {who}{system}: {text}", clock(m.time))
}

/// A message's elements as a line of text: text as it is, every other element in brackets with what
/// identifies it (an image's size and URL, a file's name and size, ...).
fn describe(elems: &[MsgElem]) -> String {
    if elems.is_empty() {
        return "(nothing this client can show)".into();
    }
    let link = |url: &str, uuid: &str| if url.is_empty() { format!("UUID {uuid}") } else { url.to_owned() };
    let parts: Vec<String> = elems
        .iter()
        .map(|e| match e {
            MsgElem::Text(t) => t.text.clone(),
            MsgElem::Face(f) if f.data.is_empty() => format!("[face {}]", f.index),
            MsgElem::Face(f) => format!("[face {} {:?}]", f.index, f.data),
            MsgElem::Location(l) if l.desc.is_empty() => format!("[location {}, {}]", l.latitude, l.longitude),
            MsgElem::Location(l) => format!("[location {:?} at {}, {}]", l.desc, l.latitude, l.longitude),
            MsgElem::Image(i) => {
                let original = i.image_info_array.iter().find(|info| info.kind == 1).or(i.image_info_array.first());
                match original {
                    Some(o) => {
                        format!("[image {}x{}, {}: {}]", o.width, o.height, HumanBytes(o.size), link(&o.url, &i.uuid))
                    }
                    None => format!("[image UUID {}]", i.uuid),
                }
            }
            MsgElem::Sound(s) => format!("[sound {} s, {}: {}]", s.second, HumanBytes(s.size), link(&s.url, &s.uuid)),
            MsgElem::File(f) => {
                let name = if f.file_name.is_empty() { "unnamed" } else { f.file_name.as_str() };
                format!("[file {name:?}, {}: {}]", HumanBytes(f.file_size), link(&f.url, &f.uuid))
            }
            MsgElem::Video(v) => {
                let thumb = if v.thumb_url.is_empty() { String::new() } else { format!(", thumbnail {}", v.thumb_url) };
                let url = link(&v.video_url, &v.video_uuid);
                format!("[video {} s, {}: {url}{thumb}]", v.video_second, HumanBytes(v.video_size))
            }
            MsgElem::Custom(c) => {
                let mut fields = vec![format!("data {:?}", c.data)];
                for (name, value) in [("desc", &c.desc), ("ext", &c.ext), ("sound", &c.sound)] {
                    if !value.is_empty() {
                        fields.push(format!("{name} {value:?}"));
                    }
                }
                format!("[custom {}]", fields.join(", "))
            }
        })
        .collect();
    parts.join(" ")
}

/// `HH:MM:SS` (UTC) of a unix time.
fn clock(time: i64) -> String {
    let s = time.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn message_json(m: &Message) -> Value {
    json!({
        "from": m.from,
        "to": m.to,
        "msg_key": m.msg_key,
        "seq": m.seq,
        "random": m.random,
        "time": m.time,
        "conv_seq": m.conv_seq,
        "body": serde_json::to_value(&m.elems).unwrap_or(Value::Null),
        "cloud_custom_data": m.cloud_custom_data,
        "recalled": m.recalled,
        "revoker": m.revoker,
        "peer_read": m.peer_read,
        "need_read_receipt": m.need_read_receipt,
        "receipt_time": m.receipt_time,
        "version": m.version,
        "nick": m.sender.nick,
        "face_url": m.sender.face_url,
        "system": m.sender.system,
    })
}

fn conversation_json(c: &Conversation) -> Value {
    json!({
        "peer": c.peer,
        "unread": c.unread,
        "time": c.time,
        "peer_read_time": c.peer_read_time,
        "settings": c.settings,
        "last": c.last.as_ref().map(message_json),
    })
}

/// One event as a JSON line: `{"event": "<name>", ...}`.
pub fn event_json(e: &Event) -> Value {
    match e {
        Event::Connection(state) => json!({"event": "connection", "state": format!("{state:?}")}),
        Event::SyncStarted => json!({"event": "sync_started"}),
        Event::NewMessage(m) => json!({"event": "new_message", "message": message_json(m)}),
        Event::SyncComplete => json!({"event": "sync_complete"}),
        Event::ConversationChanged(c) => json!({"event": "conversation_changed", "conversation": conversation_json(c)}),
        Event::MessageRecalled { peer, msg_key, by } => {
            json!({"event": "message_recalled", "peer": peer, "msg_key": msg_key, "by": by})
        }
        Event::PeerRead { peer, time } => json!({"event": "peer_read", "peer": peer, "time": time}),
        Event::ReadReceipt { peer, msg_key, time } => {
            json!({"event": "read_receipt", "peer": peer, "msg_key": msg_key, "time": time})
        }
        Event::Typing { from, typing } => json!({"event": "typing", "from": from, "typing": typing}),
        Event::MessageModified(m) => json!({"event": "message_modified", "message": message_json(m)}),
        Event::MessageDeleted { peer, msg_key } => {
            json!({"event": "message_deleted", "peer": peer, "msg_key": msg_key})
        }
        Event::HistoryCleared { peer } => json!({"event": "history_cleared", "peer": peer}),
        Event::ConversationDeleted { peer } => json!({"event": "conversation_deleted", "peer": peer}),
        Event::Kicked { code, info } => json!({"event": "kicked", "code": code, "info": info}),
        Event::SigExpired => json!({"event": "sig_expired"}),
        Event::Relation(r) => json!({"event": "relation", "change": r}),
    }
}
