//! Friends, friend requests and the blacklist: [`Client`] methods over the `friend_*` and `black_*`
//! requests of the protocol. Changes made anywhere (another device, the other side, the admin's REST
//! calls) arrive as [`Event::Relation`](crate::Event::Relation) on every device of the user that is online.
//! A bulk change (e.g. the admin's `friend_delete_all`) arrives as one [`RelationEvent::RelationsChanged`]
//! instead of one event per change; the SDK does not re-list by itself: the app calls [`Client::friends`],
//! [`Client::friend_requests`] and [`Client::blacklist`] when it gets one. A device that was offline should
//! re-list with [`Client::friends`], [`Client::friend_requests`] and
//! [`Client::blacklist`] after [`Event::SyncComplete`](crate::Event::SyncComplete).

use duet_proto::client::ClientFrame;
pub use duet_proto::client::{Blocked, Friend, FriendRequest, RelationEvent, RequestEnd};

use crate::actor::Command;
use crate::{Client, Error};

/// Options of [`Client::add_friend`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddFriendOptions {
    /// The request's message (`AddWording`, at most 256 bytes).
    pub wording: String,
    /// Where the request comes from: `AddSource_Type_` and up to 8 letters.
    pub source: String,
    /// The remark this user gives the new friend.
    pub remark: String,
    /// Add the peer to this user's list only (`Add_Type_Single`); by default both lists.
    pub single: bool,
}

/// What [`Client::add_friend`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FriendAddResult {
    /// The friendship exists.
    Added,
    /// The peer must accept first (their `AllowType` is `NeedConfirm`; Tencent's code 30539).
    Pending,
}

/// The pending friend requests of a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FriendRequests {
    /// Requests others sent this user, oldest first.
    pub incoming: Vec<FriendRequest>,
    /// Requests this user sent, oldest first.
    pub outgoing: Vec<FriendRequest>,
}

/// A relationship request, or a request about this device's push registration and app state (all answered
/// `ok` or with relation data), before it gets its id.
#[derive(Debug, Clone)]
pub(crate) enum RelationRequest {
    PushRegister { provider: String, token: String, app_id: Option<String>, lang: Option<String> },
    PushUnregister,
    Background { unread: u64 },
    Foreground,
    Add { to: String, opts: AddFriendOptions },
    Delete { peer: String, single: bool },
    Accept { peer: String, single: bool },
    Decline { peer: String },
    Friends,
    Requests,
    BlackAdd { peer: String },
    BlackDelete { peer: String },
    BlackList,
}

impl RelationRequest {
    pub(crate) fn frame(&self, id: u64) -> ClientFrame {
        match self.clone() {
            RelationRequest::Add { to, opts } => ClientFrame::FriendAdd {
                id,
                to,
                wording: opts.wording,
                source: opts.source,
                remark: opts.remark,
                single: opts.single,
            },
            RelationRequest::Delete { peer, single } => ClientFrame::FriendDelete { id, peer, single },
            RelationRequest::Accept { peer, single } => ClientFrame::FriendAccept { id, peer, single },
            RelationRequest::Decline { peer } => ClientFrame::FriendDecline { id, peer },
            RelationRequest::Friends => ClientFrame::FriendList { id },
            RelationRequest::Requests => ClientFrame::FriendRequests { id },
            RelationRequest::BlackAdd { peer } => ClientFrame::BlackAdd { id, peer },
            RelationRequest::BlackDelete { peer } => ClientFrame::BlackDelete { id, peer },
            RelationRequest::BlackList => ClientFrame::BlackList { id },
            RelationRequest::PushRegister { provider, token, app_id, lang } => {
                ClientFrame::PushRegister { id, provider, token, app_id, lang }
            }
            RelationRequest::PushUnregister => ClientFrame::PushUnregister { id },
            RelationRequest::Background { unread } => ClientFrame::Background { id, unread },
            RelationRequest::Foreground => ClientFrame::Foreground { id },
        }
    }
}

/// The server's answer to a relationship request.
#[derive(Debug)]
pub(crate) enum RelationAnswer {
    Ok,
    Added { pending: bool },
    Friends(Vec<Friend>),
    Requests(FriendRequests),
    Blacklist(Vec<Blocked>),
}

fn peer_arg(peer: &str) -> Result<String, Error> {
    if peer.is_empty() {
        return Err(Error::InvalidArgument("the peer must not be empty".into()));
    }
    Ok(peer.to_owned())
}

fn unexpected(a: RelationAnswer) -> Error {
    Error::Protocol(format!("unexpected answer to a relationship request: {a:?}"))
}

impl Client {
    async fn relation(&self, req: RelationRequest) -> Result<RelationAnswer, Error> {
        self.request(|deadline, reply| Command::Relation { req, deadline, reply }).await
    }

    pub(crate) async fn relation_ok(&self, req: RelationRequest) -> Result<(), Error> {
        match self.relation(req).await? {
            RelationAnswer::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Asks `to` to be friends. Refusals keep Tencent's codes: 30516 (the peer accepts no requests),
    /// 30515 (the peer is in this user's blacklist), 30525 (this user is in the peer's), 30010/30014
    /// (friend limits).
    pub async fn add_friend(&self, to: &str, opts: AddFriendOptions) -> Result<FriendAddResult, Error> {
        let to = peer_arg(to)?;
        match self.relation(RelationRequest::Add { to, opts }).await? {
            RelationAnswer::Added { pending: false } => Ok(FriendAddResult::Added),
            RelationAnswer::Added { pending: true } => Ok(FriendAddResult::Pending),
            other => Err(unexpected(other)),
        }
    }

    /// Removes `peer` from the friend list and, with `both`, this user from `peer`'s (31704: not a friend).
    pub async fn delete_friend(&self, peer: &str, both: bool) -> Result<(), Error> {
        self.relation_ok(RelationRequest::Delete { peer: peer_arg(peer)?, single: !both }).await
    }

    /// Accepts `from`'s pending request: this user joins `from`'s list and `from` joins this user's
    /// (30614: no such request).
    pub async fn accept_friend_request(&self, from: &str) -> Result<(), Error> {
        self.relation_ok(RelationRequest::Accept { peer: peer_arg(from)?, single: false }).await
    }

    /// Declines `from`'s pending request (30614: no such request).
    pub async fn decline_friend_request(&self, from: &str) -> Result<(), Error> {
        self.relation_ok(RelationRequest::Decline { peer: peer_arg(from)? }).await
    }

    /// The friend list, oldest first.
    pub async fn friends(&self) -> Result<Vec<Friend>, Error> {
        match self.relation(RelationRequest::Friends).await? {
            RelationAnswer::Friends(list) => Ok(list),
            other => Err(unexpected(other)),
        }
    }

    /// The pending requests received and sent.
    pub async fn friend_requests(&self) -> Result<FriendRequests, Error> {
        match self.relation(RelationRequest::Requests).await? {
            RelationAnswer::Requests(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Adds `peer` to the blacklist; any friendship and pending request between the two goes.
    pub async fn add_to_blacklist(&self, peer: &str) -> Result<(), Error> {
        self.relation_ok(RelationRequest::BlackAdd { peer: peer_arg(peer)? }).await
    }

    /// Removes `peer` from the blacklist.
    pub async fn remove_from_blacklist(&self, peer: &str) -> Result<(), Error> {
        self.relation_ok(RelationRequest::BlackDelete { peer: peer_arg(peer)? }).await
    }

    /// The blacklist, oldest first.
    pub async fn blacklist(&self) -> Result<Vec<Blocked>, Error> {
        match self.relation(RelationRequest::BlackList).await? {
            RelationAnswer::Blacklist(list) => Ok(list),
            other => Err(unexpected(other)),
        }
    }
}
