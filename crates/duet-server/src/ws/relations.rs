//! The relationship requests of the client protocol (`friend_*`, `black_*`) and the `relation` events,
//! converted between the wire and the domain. Refusals carry the `sns` codes (30515, 30516, 30525,
//! 31704, ...) of the REST API.

use duet_core::Core;
use duet_core::callbacks::Source;
use duet_core::relations::{self as rel, AddFriend, Added, Direction};
use duet_proto::ApiError;
use duet_proto::client::{self, Blocked, ClientFrame, Friend, FriendRequest, RelationEvent, RequestEnd, ServerFrame};
use duet_proto::rest::{Command, Service};

use crate::rest::error;

/// Answers a relationship request of `user`.
pub(super) async fn answer(
    core: &Core,
    user: &str,
    caller: &Source,
    frame: ClientFrame,
) -> Result<ServerFrame, ApiError> {
    let fail = |e| error::core(Command::FriendAdd, Service::Sns, e);
    let one = |r: Vec<Result<(), rel::RelationError>>| match r.into_iter().next() {
        Some(Err(e)) => Err(relation_error(e)),
        _ => Ok(()),
    };
    let direction = |single: bool| if single { Direction::Single } else { Direction::Both };
    Ok(match frame {
        ClientFrame::FriendAdd { id, to, wording, source, remark, single } => {
            valid(&to)?;
            duet_proto::rest::sns::check_request_fields(&source, &wording, &remark)?;
            let item = AddFriend { to, remark, group: String::new(), source, wording };
            let r =
                core.relations().add_friends(user, vec![item], direction(single), false, caller).await.map_err(fail)?;
            match r.into_iter().next() {
                Some(Ok(added)) => ServerFrame::FriendAddResult { id, pending: added == Added::Pending },
                Some(Err(e)) => return Err(relation_error(e)),
                None => return Err(error::internal(Service::Sns)),
            }
        }
        ClientFrame::FriendDelete { id, peer, single } => {
            valid(&peer)?;
            one(core.relations().delete_friends(user, vec![peer], direction(single), caller).await.map_err(fail)?)?;
            ServerFrame::Ok { id }
        }
        ClientFrame::FriendAccept { id, peer, single } => {
            valid(&peer)?;
            core.relations().accept_friend(user, &peer, direction(single), caller).await.map_err(fail)?;
            ServerFrame::Ok { id }
        }
        ClientFrame::FriendDecline { id, peer } => {
            valid(&peer)?;
            core.relations().decline_friend(user, &peer).await.map_err(fail)?;
            ServerFrame::Ok { id }
        }
        ClientFrame::FriendList { id } => {
            let friends = core.relations().friends(user).await.map_err(fail)?.iter().map(friend).collect();
            ServerFrame::FriendList { id, friends }
        }
        ClientFrame::FriendRequests { id } => {
            let (incoming, outgoing) = core.relations().friend_requests(user).await.map_err(fail)?;
            ServerFrame::FriendRequests {
                id,
                incoming: incoming.iter().map(request).collect(),
                outgoing: outgoing.iter().map(request).collect(),
            }
        }
        ClientFrame::BlackAdd { id, peer } => {
            valid(&peer)?;
            one(core.relations().add_to_blacklist(user, vec![peer], caller).await.map_err(fail)?)?;
            ServerFrame::Ok { id }
        }
        ClientFrame::BlackDelete { id, peer } => {
            valid(&peer)?;
            one(core.relations().remove_from_blacklist(user, vec![peer], caller).await.map_err(fail)?)?;
            ServerFrame::Ok { id }
        }
        ClientFrame::BlackList { id } => {
            let items = core.relations().blacklist(user).await.map_err(fail)?;
            ServerFrame::BlackList {
                id,
                items: items.into_iter().map(|b| Blocked { peer: b.peer, time: b.time }).collect(),
            }
        }
        _ => return Err(ApiError::new(client::code::INVALID_PARAMS, "not a relationship request")),
    })
}

fn valid(id: &str) -> Result<(), ApiError> {
    duet_proto::rest::validate_user_id(id).map_err(|why| ApiError::new(client::code::INVALID_USER_ID, why))
}

fn relation_error(e: rel::RelationError) -> ApiError {
    ApiError::new(error::relation(e).0, e.to_string())
}

fn friend(f: &rel::Friend) -> Friend {
    Friend {
        peer: f.peer.clone(),
        remark: f.remark.clone(),
        groups: f.groups.clone(),
        source: f.add_source.clone(),
        wording: f.add_wording.clone(),
        add_time: f.add_time,
    }
}

fn request(r: &rel::FriendRequest) -> FriendRequest {
    FriendRequest {
        from: r.from.clone(),
        to: r.to.clone(),
        wording: r.wording.clone(),
        source: r.source.clone(),
        time: r.time,
    }
}

/// A domain relation event as the `relation` frame carries it.
pub(super) fn event(e: &rel::RelationEvent) -> ServerFrame {
    let event = match e {
        rel::RelationEvent::FriendAdded(f) => RelationEvent::FriendAdded { friend: friend(f) },
        rel::RelationEvent::FriendRemoved { peer } => RelationEvent::FriendRemoved { peer: peer.clone() },
        rel::RelationEvent::RequestReceived(r) => RelationEvent::RequestReceived { request: request(r) },
        rel::RelationEvent::RequestSent(r) => RelationEvent::RequestSent { request: request(r) },
        rel::RelationEvent::RequestDeleted { from, to, why } => RelationEvent::RequestDeleted {
            from: from.clone(),
            to: to.clone(),
            reason: match why {
                rel::RequestEnd::Accepted => RequestEnd::Accepted,
                rel::RequestEnd::Declined => RequestEnd::Declined,
                rel::RequestEnd::Cancelled => RequestEnd::Cancelled,
            },
        },
        rel::RelationEvent::BlacklistAdded(b) => {
            RelationEvent::BlackAdded { entry: Blocked { peer: b.peer.clone(), time: b.time } }
        }
        rel::RelationEvent::BlacklistRemoved { peer } => RelationEvent::BlackRemoved { peer: peer.clone() },
        rel::RelationEvent::Changed => RelationEvent::RelationsChanged,
    };
    ServerFrame::Relation { event }
}
