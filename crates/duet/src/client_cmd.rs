//! `duet client`: a terminal client on the Rust SDK. `listen` prints every event as one JSON line;
//! `send`, `history` and `conversations` do one thing and print JSON; `chat` is an interactive session
//! with one peer. `send --image/--file/--sound/--video` uploads with a progress bar first; `fetch`
//! downloads a message's media to a file.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use duet_client::{
    Client, ClientConfig, Conversation, Event, Events, LocalStoreConfig, Message, MsgElem, Platform, SendOptions, elems,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

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
    /// Print every event as one JSON line: offline messages, conversations, sync complete, live messages
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
    /// Chat with a peer in the terminal: type a line to send it, Ctrl-D to quit
    Chat {
        #[arg(long)]
        peer: String,
    },
    /// Download a message's media (its URL, or an upload's UUID, optionally with /large or /thumb) to a file
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

pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let platform = Platform::from_name(&args.platform).with_context(|| {
        format!("unknown platform {:?}; use iPhone, Android, iPad, PC, Mac, Linux or Web", args.platform)
    })?;
    let mut config = ClientConfig::new(&args.server, &args.user, &args.usersig).platform(platform);
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
        ClientCommand::Send(send) => send_elems(send)?,
        _ => Vec::new(),
    };
    let (client, events) = Client::connect(config).await.context("connecting")?;
    let result = match args.command {
        ClientCommand::Listen => listen(events).await,
        ClientCommand::Send(send) => {
            let mut elems = elems;
            elems.extend(upload_media(&client, &send).await?);
            let opts = SendOptions {
                cloud_custom_data: send.cloud_custom_data,
                online_only: send.online_only,
                ..SendOptions::default()
            };
            let sent = client.send_message(&send.to, elems, opts).await.context("sending")?;
            println!(
                "{}",
                json!({"msg_key": sent.msg_key, "seq": sent.seq, "random": sent.random, "time": sent.time, "conv_seq": sent.conv_seq})
            );
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
        ClientCommand::Chat { peer } => chat(&client, events, &peer).await,
        ClientCommand::Fetch { what, output } => {
            let bar = progress_bar(&format!("downloading {what}"));
            let size = client.download(&what, &output, progress(&bar)).await.context("downloading")?;
            bar.finish_and_clear();
            println!("{}", json!({"file": output.display().to_string(), "size": size}));
            Ok(())
        }
    };
    let _ = client.logout().await;
    result
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
    // The catch-up after login raises offline messages again as new messages: show each once.
    let mut shown: std::collections::HashSet<String> = recent.into_iter().map(|m| m.msg_key).collect();
    eprintln!("-- chatting with {peer}; type a message and Enter to send, Ctrl-D to quit");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                None => return Ok(()),
                Some(line) if line.trim().is_empty() => {}
                Some(line) => {
                    let sent = client.send_text(peer, &line).await.context("sending")?;
                    println!("[{}] {}: {}", clock(sent.time), client.user(), line);
                }
            },
            event = events.recv() => match event {
                None => return Ok(()),
                Some(Event::NewMessage(m)) if m.peer(client.user()) == peer => {
                    if shown.insert(m.msg_key.clone()) {
                        println!("{}", chat_line(&m));
                    }
                }
                Some(Event::Kicked { code, info }) => bail!("kicked offline ({code}): {info}"),
                Some(Event::SigExpired) => bail!("the UserSig expired"),
                Some(Event::Connection(state)) => eprintln!("-- {state:?}"),
                Some(_) => {}
            },
        }
    }
}

fn chat_line(m: &Message) -> String {
    let text = if m.recalled { "(recalled)".to_owned() } else { m.text() };
    let who = if m.sender.nick.is_empty() { m.from.clone() } else { format!("{} ({})", m.sender.nick, m.from) };
    let system = if m.sender.system { " [system]" } else { "" };
    format!("[{}] {who}{system}: {text}", clock(m.time))
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
        "nick": m.sender.nick,
        "face_url": m.sender.face_url,
        "system": m.sender.system,
    })
}

fn conversation_json(c: &Conversation) -> Value {
    json!({"peer": c.peer, "unread": c.unread, "time": c.time, "last": c.last.as_ref().map(message_json)})
}

/// One event as a JSON line: `{"event": "<name>", ...}`.
pub fn event_json(e: &Event) -> Value {
    match e {
        Event::Connection(state) => json!({"event": "connection", "state": format!("{state:?}")}),
        Event::SyncStarted => json!({"event": "sync_started"}),
        Event::NewMessage(m) => json!({"event": "new_message", "message": message_json(m)}),
        Event::SyncComplete => json!({"event": "sync_complete"}),
        Event::ConversationChanged(c) => json!({"event": "conversation_changed", "conversation": conversation_json(c)}),
        Event::MessageRecalled { peer, msg_key } => {
            json!({"event": "message_recalled", "peer": peer, "msg_key": msg_key})
        }
        Event::Kicked { code, info } => json!({"event": "kicked", "code": code, "info": info}),
        Event::SigExpired => json!({"event": "sig_expired"}),
        Event::Relation(r) => json!({"event": "relation", "change": r}),
    }
}
