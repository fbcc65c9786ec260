//! The relationship chain's service: friend lists, friend requests, blacklists, and what the permission
//! policy ([`policy`]) of every client send reads.
//!
//! * [`RelationStore`] is the storage trait: load one user's relations, and apply a batch of
//!   [`RelationChange`]s atomically.
//! * [`Relations`] keeps the in-memory cache the send path reads: per user that exists, the friend list,
//!   the blacklist and the pending requests, loaded on first use and kept coherent by every relation write
//!   (all of which go through [`Relations`] and are serialised by one async mutex, which account deletion
//!   takes too). A write copies each user it touches and replaces the cached entries after its commit. A
//!   client send costs one or two hash lookups under a read lock; a user's first send or receipt after
//!   start costs two store reads (does the account exist, its relations), made without the write lock: a
//!   load only inserts an entry that is still absent, and only if no account was deleted meanwhile (see
//!   `Cache::evictions`). UserIDs that name no account are never cached, so made-up IDs cannot grow the
//!   cache.
//!
//! Relationships are directional, as in Tencent IM: "A has B as a friend" means B is in A's friend list.
//! `Add_Type_Both` writes both directions. Adding someone to a blacklist removes the friendship both ways and
//! any pending request between the two.

pub mod policy;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::callbacks::{AfterEvent, EventKind, Notifier, Pair, Source};
use crate::clock::Clock;
use crate::error::Error;
pub use crate::error::{RelationError, SendRefusal};
use crate::hub::{Hub, Notice, Outbound};
use crate::model::ProfileValue;
pub use crate::model::{Blocked, Friend, FriendRequest, RelationEvent, RequestEnd};
use crate::store::{self, Store};
pub use crate::store::{RelationChange, RelationData, RelationStore};
use policy::Ties;
pub use policy::{BlacklistCheck, Permissions, Verdict};

/// Most friends per user (Tencent: 3 000).
pub const MAX_FRIENDS: usize = 3_000;
/// Most blacklist entries per user (Tencent: 1 000).
pub const MAX_BLACKLIST: usize = 1_000;
/// Most pending requests a user may have received (Tencent: 100 pending).
pub const MAX_PENDING: usize = 100;

/// The profile tag that says who may add a user as a friend.
pub const TAG_ALLOW_TYPE: &str = "Tag_Profile_IM_AllowType";

/// Who may add a user as a friend (`Tag_Profile_IM_AllowType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowType {
    /// `AllowType_Type_AllowAny`: requests are granted at once.
    AllowAny,
    /// `AllowType_Type_NeedConfirm` (Tencent's default): a request waits for the user to accept it.
    #[default]
    NeedConfirm,
    /// `AllowType_Type_DenyAny`: requests are refused.
    DenyAny,
}

impl AllowType {
    pub fn from_tag_value(v: &str) -> AllowType {
        match v {
            "AllowType_Type_AllowAny" => AllowType::AllowAny,
            "AllowType_Type_DenyAny" => AllowType::DenyAny,
            _ => AllowType::NeedConfirm,
        }
    }
}

/// Most relation events one operation sends one user; beyond, the user gets one [`RelationEvent::Changed`]
/// instead, so that a bulk change cannot overflow a session's queue.
pub const MAX_EVENTS_PER_USER: usize = 16;

/// How two users relate, from the first one's point of view (`friend_check`, `black_list_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    BothWay,
    /// The second is in the first's list only.
    AWithB,
    /// The first is in the second's list only.
    BWithA,
    None,
}

impl Relation {
    fn of(a_has_b: bool, b_has_a: bool) -> Relation {
        match (a_has_b, b_has_a) {
            (true, true) => Relation::BothWay,
            (true, false) => Relation::AWithB,
            (false, true) => Relation::BWithA,
            (false, false) => Relation::None,
        }
    }
}

/// A friend request to make (`friend_add`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddFriend {
    pub to: String,
    pub remark: String,
    pub group: String,
    pub source: String,
    pub wording: String,
}

/// What `friend_add` did for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The friendship exists now.
    Done,
    /// A request waits for the target to accept it.
    Pending,
}

/// One user's relations, as cached.
#[derive(Debug, Clone, Default)]
struct UserRelations {
    friends: HashMap<String, Friend>,
    blacklist: HashMap<String, i64>,
    incoming: HashMap<String, FriendRequest>,
    outgoing: HashMap<String, FriendRequest>,
}

impl UserRelations {
    fn from_data(d: RelationData) -> UserRelations {
        UserRelations {
            friends: d.friends.into_iter().map(|f| (f.peer.clone(), f)).collect(),
            blacklist: d.blacklist.into_iter().map(|b| (b.peer, b.time)).collect(),
            incoming: d.incoming.into_iter().map(|r| (r.from.clone(), r)).collect(),
            outgoing: d.outgoing.into_iter().map(|r| (r.to.clone(), r)).collect(),
        }
    }
}

/// The relationship chain's service: the cache of relations, and the lock that serialises relation
/// writes (and account deletions).
pub struct Relations {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hub: Arc<Hub>,
    /// The after-event callbacks (`Sns.*`).
    notifier: Arc<Notifier>,
    permissions: Permissions,
    cache: RwLock<Cache>,
    writes: tokio::sync::Mutex<()>,
}

/// The cached relations of users that exist.
#[derive(Default)]
struct Cache {
    users: HashMap<String, Arc<UserRelations>>,
    /// Counts the times entries were changed other than by a writer replacing them after its commit (account
    /// deletions). A load made without the write lock inserts what it read only if this did not move
    /// meanwhile: otherwise what it read may be older than what the cache dropped.
    evictions: u64,
}

/// The state a relation write works on: copies of the users it touches, the changes to store and the
/// events to send once stored.
#[derive(Default)]
struct Txn {
    users: HashMap<String, UserRelations>,
    /// The users the write names that have no account: never cached.
    ghosts: std::collections::HashSet<String>,
    changes: Vec<RelationChange>,
    events: Vec<(String, RelationEvent)>,
}

impl Txn {
    /// Whether `id`'s account existed when the write began (under the write lock, which account deletion
    /// takes too, so it still does).
    fn exists(&self, id: &str) -> bool {
        self.users.contains_key(id) && !self.ghosts.contains(id)
    }

    fn user(&mut self, id: &str) -> &mut UserRelations {
        self.users.entry(id.to_owned()).or_default()
    }

    fn has_friend(&self, owner: &str, peer: &str) -> bool {
        self.users.get(owner).is_some_and(|u| u.friends.contains_key(peer))
    }

    fn blocks(&self, owner: &str, peer: &str) -> bool {
        self.users.get(owner).is_some_and(|u| u.blacklist.contains_key(peer))
    }

    fn friend_count(&self, owner: &str) -> usize {
        self.users.get(owner).map_or(0, |u| u.friends.len())
    }

    fn put_friend(&mut self, owner: &str, friend: Friend) {
        let new = self.user(owner).friends.insert(friend.peer.clone(), friend.clone()).is_none();
        if new {
            self.events.push((owner.to_owned(), RelationEvent::FriendAdded(friend.clone())));
        }
        self.changes.push(RelationChange::PutFriend { owner: owner.to_owned(), friend });
    }

    fn remove_friend(&mut self, owner: &str, peer: &str) -> bool {
        if self.user(owner).friends.remove(peer).is_none() {
            return false;
        }
        self.changes.push(RelationChange::DeleteFriend { owner: owner.to_owned(), peer: peer.to_owned() });
        self.events.push((owner.to_owned(), RelationEvent::FriendRemoved { peer: peer.to_owned() }));
        true
    }

    fn put_request(&mut self, r: FriendRequest) {
        self.user(&r.from).outgoing.insert(r.to.clone(), r.clone());
        self.user(&r.to).incoming.insert(r.from.clone(), r.clone());
        self.events.push((r.to.clone(), RelationEvent::RequestReceived(r.clone())));
        self.events.push((r.from.clone(), RelationEvent::RequestSent(r.clone())));
        self.changes.push(RelationChange::PutRequest(r));
    }

    fn remove_request(&mut self, from: &str, to: &str, why: RequestEnd) -> Option<FriendRequest> {
        let r = self.user(from).outgoing.remove(to);
        self.user(to).incoming.remove(from);
        let r = r?;
        self.changes.push(RelationChange::DeleteRequest { from: from.to_owned(), to: to.to_owned() });
        for user in [from, to] {
            let event = RelationEvent::RequestDeleted { from: from.to_owned(), to: to.to_owned(), why };
            self.events.push((user.to_owned(), event));
        }
        Some(r)
    }

    fn put_blocked(&mut self, owner: &str, entry: Blocked) {
        self.user(owner).blacklist.insert(entry.peer.clone(), entry.time);
        self.events.push((owner.to_owned(), RelationEvent::BlacklistAdded(entry.clone())));
        self.changes.push(RelationChange::PutBlocked { owner: owner.to_owned(), entry });
    }

    fn remove_blocked(&mut self, owner: &str, peer: &str) -> bool {
        if self.user(owner).blacklist.remove(peer).is_none() {
            return false;
        }
        self.events.push((owner.to_owned(), RelationEvent::BlacklistRemoved { peer: peer.to_owned() }));
        self.changes.push(RelationChange::DeleteBlocked { owner: owner.to_owned(), peer: peer.to_owned() });
        true
    }
}

/// What the app's backend is told of a relation write, and as whose.
struct Announce<'a> {
    source: &'a Source,
    /// Whose events they are (the operation's owner).
    user: &'a str,
    /// Who asked for the friendships it adds (Tencent's `Initiator_Account`).
    initiator: &'a str,
    /// Tencent's `ClientCmd` of the friendships it adds.
    client_cmd: &'static str,
    /// `ForceAddFlags`.
    force: bool,
}

impl<'a> Announce<'a> {
    /// A write of `user`'s that adds no friendship.
    fn by(source: &'a Source, user: &'a str) -> Announce<'a> {
        Announce { source, user, initiator: user, client_cmd: "", force: false }
    }
}

/// A change to one friend entry (`friend_update`): gets the current entry, returns the new one.
pub type FriendEdit = Box<dyn FnOnce(Friend) -> Friend + Send>;

/// Which lists a friend operation touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Only the owner's list.
    Single,
    /// The owner's list and the peer's.
    Both,
}

impl Relations {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hub: Arc<Hub>,
        notifier: Arc<Notifier>,
        permissions: Permissions,
    ) -> Relations {
        Relations {
            store,
            clock,
            hub,
            notifier,
            permissions,
            cache: RwLock::default(),
            writes: tokio::sync::Mutex::default(),
        }
    }

    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    // ---- the send check ---------------------------------------------------------------------------

    /// Applies the permission policy to a client send from `from` to `to` (the permit stage of a send,
    /// `messages::Messages::prepare_send`, which leaves the app's admins out); also says whether `to`
    /// exists, when that was learnt on the way (`None` for a message to oneself, which passes unchecked).
    /// A user with no account has no relations (and is not cached).
    pub async fn permit(&self, from: &str, to: &str) -> Result<(Verdict, Option<bool>), Error> {
        if from == to {
            return Ok((Verdict::Allow, None));
        }
        let policy = self.permissions;
        let ties = |recipient: &UserRelations, sender: Option<&UserRelations>| Ties {
            blocked: recipient.blacklist.contains_key(from),
            sender_has: sender.is_some_and(|s| s.friends.contains_key(to)),
            recipient_has: recipient.friends.contains_key(from),
        };
        {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if let Some(recipient) = cache.users.get(to) {
                let sender = if policy.friends_only { cache.users.get(from) } else { None };
                if !policy.friends_only || sender.is_some() {
                    return Ok((policy::decide(policy, ties(recipient, sender.map(|s| &**s)))?, Some(true)));
                }
            }
        }
        let users: &[&str] = if policy.friends_only { &[to, from] } else { &[to] };
        let found = self.lookup(users).await?;
        let empty = UserRelations::default();
        let exists = found[0].is_some();
        let recipient = found[0].as_deref().unwrap_or(&empty);
        let sender = policy.friends_only.then(|| found[1].as_deref().unwrap_or(&empty));
        Ok((policy::decide(policy, ties(recipient, sender))?, Some(exists)))
    }

    /// Each of `users`' relations: from the cache, or else read from the store and cached. `None` for a
    /// user with no account (not cached). Takes no lock across the store reads, so a first send does not
    /// wait for relation writes; see [`Cache::evictions`] for why what it inserts is never stale.
    async fn lookup(&self, users: &[&str]) -> Result<Vec<Option<Arc<UserRelations>>>, Error> {
        let mut found: Vec<Option<Arc<UserRelations>>> = vec![None; users.len()];
        let mut missing: Vec<usize> = Vec::new();
        let mut evictions = {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            for (i, user) in users.iter().enumerate() {
                match cache.users.get(*user) {
                    Some(u) => found[i] = Some(u.clone()),
                    None => missing.push(i),
                }
            }
            cache.evictions
        };
        while !missing.is_empty() {
            let ids: Vec<String> = missing.iter().map(|&i| users[i].to_owned()).collect();
            let exist = self.store.accounts_exist(ids).await?;
            let mut loaded = Vec::new();
            for (&i, exists) in missing.iter().zip(exist) {
                if exists {
                    let data = self.store.load_relations(users[i].to_owned()).await?;
                    loaded.push((i, Arc::new(UserRelations::from_data(data))));
                }
            }
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            if cache.evictions != evictions {
                // An account was deleted while we read: what we read may predate it. Read again.
                evictions = cache.evictions;
                missing.retain(|&i| match cache.users.get(users[i]) {
                    Some(u) => {
                        found[i] = Some(u.clone());
                        false
                    }
                    None => true,
                });
                continue;
            }
            for (i, u) in loaded {
                // A writer that got there first holds the newer state.
                let entry = cache.users.entry(users[i].to_owned()).or_insert(u);
                found[i] = Some(entry.clone());
            }
            missing.clear();
        }
        Ok(found)
    }

    /// A transaction over copies of `users`; those with no account are noted as such. Call with the write
    /// lock held.
    async fn begin(&self, users: &[&str]) -> Result<Txn, Error> {
        let mut unique: Vec<&str> = Vec::with_capacity(users.len());
        let mut seen = std::collections::HashSet::new();
        for u in users {
            if seen.insert(*u) {
                unique.push(u);
            }
        }
        if self.hub.clustered() {
            // Another node may have written these users' relations since they were cached (its notice may
            // still be on its way): a write starts from what the store holds.
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            cache.evictions += 1;
            for u in &unique {
                cache.users.remove(*u);
            }
        }
        let found = self.lookup(&unique).await?;
        let mut txn = Txn::default();
        for (user, found) in unique.into_iter().zip(found) {
            match found {
                Some(u) => {
                    txn.users.insert(user.to_owned(), (*u).clone());
                }
                None => {
                    txn.ghosts.insert(user.to_owned());
                }
            }
        }
        Ok(txn)
    }

    /// [`Relations::begin`] for an operation of `owner`, whose account must exist.
    async fn begin_for(&self, owner: &str, others: &[&str]) -> Result<Txn, Error> {
        let mut users = Vec::with_capacity(others.len() + 1);
        users.push(owner);
        users.extend_from_slice(others);
        let txn = self.begin(&users).await?;
        if !txn.exists(owner) {
            return Err(Error::NoSuchAccount(owner.to_owned()));
        }
        Ok(txn)
    }

    /// Stores the transaction's changes; then makes its copies the cached state and tells the devices (a
    /// user with more than [`MAX_EVENTS_PER_USER`] events gets one [`RelationEvent::Changed`] instead).
    /// The app's backend is told what `announce` names (`Sns.CallbackFriendAdd`, …), in the same commit.
    async fn commit(&self, txn: Txn, announce: Option<Announce<'_>>) -> Result<(), Error> {
        if txn.changes.is_empty() {
            return Ok(());
        }
        let events = announce.map(|a| self.callback_events(&txn, a)).unwrap_or_default();
        let queued = !events.is_empty();
        self.store.apply_relations(txn.changes, events).await?;
        if queued {
            self.notifier.wake();
        }
        let changed: Vec<String> = txn.users.keys().cloned().collect();
        {
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            for (id, user) in txn.users {
                if !txn.ghosts.contains(&id) {
                    cache.users.insert(id, Arc::new(user));
                }
            }
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (user, _) in &txn.events {
            *counts.entry(user.as_str()).or_default() += 1;
        }
        let mut collapsed: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (user, event) in &txn.events {
            if counts[user.as_str()] > MAX_EVENTS_PER_USER {
                if collapsed.insert(user.as_str()) {
                    self.hub.notify(user, Outbound::Relation(Arc::new(RelationEvent::Changed)));
                }
                continue;
            }
            self.hub.notify(user, Outbound::Relation(Arc::new(event.clone())));
        }
        self.hub.publish(Notice::Relations { users: changed });
        Ok(())
    }

    /// The callback events of a transaction's changes: one per command, with every pair it changed.
    fn callback_events(&self, txn: &Txn, a: Announce<'_>) -> Vec<AfterEvent> {
        let (mut added, mut deleted, mut blocked, mut unblocked) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let pair = |from: &str, to: &str, initiator: Option<&str>| Pair {
            from: from.to_owned(),
            to: to.to_owned(),
            initiator: initiator.map(str::to_owned),
        };
        for (user, event) in &txn.events {
            match event {
                RelationEvent::FriendAdded(f) => added.push(pair(user, &f.peer, Some(a.initiator))),
                RelationEvent::FriendRemoved { peer } => deleted.push(pair(user, peer, None)),
                RelationEvent::BlacklistAdded(b) => blocked.push(pair(user, &b.peer, None)),
                RelationEvent::BlacklistRemoved { peer } => unblocked.push(pair(user, peer, None)),
                _ => {}
            }
        }
        let admin = a.source.admin.clone();
        let kinds = [
            (!added.is_empty()).then(|| EventKind::FriendAdd {
                pairs: added,
                client_cmd: a.client_cmd.to_owned(),
                admin,
                force: a.force,
            }),
            (!deleted.is_empty()).then_some(EventKind::FriendDelete { pairs: deleted }),
            (!blocked.is_empty()).then_some(EventKind::BlackListAdd { pairs: blocked }),
            (!unblocked.is_empty()).then_some(EventKind::BlackListDelete { pairs: unblocked }),
        ];
        let (platform, ip) = (a.source.platform, a.source.client_ip.as_deref());
        kinds.into_iter().flatten().filter_map(|kind| self.notifier.event(a.user, platform, ip, kind)).collect()
    }

    /// Which of `ids` exist.
    async fn existing(&self, ids: &[String]) -> Result<Vec<bool>, Error> {
        Ok(self.store.accounts_exist(ids.to_vec()).await?)
    }

    async fn allow_type(&self, user: &str) -> Result<AllowType, Error> {
        let profile = self.store.profiles(vec![user.to_owned()], vec![TAG_ALLOW_TYPE.to_owned()]).await?;
        Ok(match profile.into_iter().next().flatten().unwrap_or_default().pop() {
            Some((_, ProfileValue::Text(v))) => AllowType::from_tag_value(&v),
            _ => AllowType::default(),
        })
    }

    /// How many users' relations are cached (for tests of the cache's bounds).
    #[doc(hidden)]
    pub fn cached_relation_users(&self) -> usize {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).users.len()
    }

    // ---- friends ----------------------------------------------------------------------------------

    /// `from` asks to add each of `items` as a friend. `force` (the admin's `ForceAddFlags`) skips the
    /// targets' `AllowType`. The result of each item is in order.
    pub async fn add_friends(
        &self,
        from: &str,
        items: Vec<AddFriend>,
        direction: Direction,
        force: bool,
        source: &Source,
    ) -> Result<Vec<Result<Added, RelationError>>, Error> {
        store::require(&*self.store, from).await?;
        let ids: Vec<String> = items.iter().map(|i| i.to.clone()).collect();
        let exist = self.existing(&ids).await?;
        let mut allow = Vec::with_capacity(items.len());
        for (item, exists) in items.iter().zip(&exist) {
            allow.push(if *exists && !force { self.allow_type(&item.to).await? } else { AllowType::AllowAny });
        }
        let now = self.clock.now_secs();
        let _guard = self.writes.lock().await;
        let others: Vec<&str> = ids.iter().zip(&exist).filter(|(_, e)| **e).map(|(id, _)| id.as_str()).collect();
        // Existence is known again under the lock: an account deleted meanwhile gets no rows.
        let mut txn = self.begin_for(from, &others).await?;
        let mut results = Vec::with_capacity(items.len());
        for ((item, existed), allow) in items.into_iter().zip(exist).zip(allow) {
            let exists = existed && txn.exists(&item.to);
            results.push(add_one(&mut txn, from, item, exists, allow, direction, now));
        }
        self.commit(txn, Some(Announce { source, user: from, initiator: from, client_cmd: "friend_add", force }))
            .await?;
        Ok(results)
    }

    /// Writes friends into `owner`'s list as given (one way, no request): `friend_import`.
    pub async fn import_friends(
        &self,
        owner: &str,
        friends: Vec<Friend>,
        source: &Source,
    ) -> Result<Vec<Result<(), RelationError>>, Error> {
        store::require(&*self.store, owner).await?;
        let _guard = self.writes.lock().await;
        let peers: Vec<&str> = friends.iter().map(|f| f.peer.as_str()).collect();
        let mut txn = self.begin_for(owner, &peers).await?;
        let mut results = Vec::with_capacity(friends.len());
        for friend in friends {
            let peer = friend.peer.clone();
            let r = if !txn.exists(&peer) {
                Err(RelationError::NoSuchAccount)
            } else if peer == owner {
                Err(RelationError::IsSelf)
            } else if txn.blocks(owner, &peer) {
                Err(RelationError::InOwnBlacklist)
            } else if txn.blocks(&peer, owner) {
                Err(RelationError::InPeerBlacklist)
            } else if !txn.has_friend(owner, &peer) && txn.friend_count(owner) >= MAX_FRIENDS {
                Err(RelationError::OwnFriendLimit)
            } else {
                txn.put_friend(owner, friend);
                Ok(())
            };
            results.push(r);
        }
        self.commit(
            txn,
            Some(Announce { source, user: owner, initiator: owner, client_cmd: "friend_import", force: false }),
        )
        .await?;
        Ok(results)
    }

    /// Changes the remark, groups or custom tags of friends in `owner`'s list: `friend_update`. Each
    /// update gets the current entry and returns the new one.
    pub async fn update_friends(
        &self,
        owner: &str,
        updates: Vec<(String, FriendEdit)>,
    ) -> Result<Vec<Result<(), RelationError>>, Error> {
        store::require(&*self.store, owner).await?;
        let _guard = self.writes.lock().await;
        let mut txn = self.begin_for(owner, &[]).await?;
        let mut results = Vec::with_capacity(updates.len());
        for (peer, update) in updates {
            match txn.user(owner).friends.get(&peer).cloned() {
                None => results.push(Err(RelationError::NotFriend)),
                Some(friend) => {
                    let friend = update(friend);
                    txn.user(owner).friends.insert(peer.clone(), friend.clone());
                    txn.changes.push(RelationChange::PutFriend { owner: owner.to_owned(), friend });
                    results.push(Ok(()));
                }
            }
        }
        self.commit(txn, None).await?;
        Ok(results)
    }

    /// Removes each of `peers` from `owner`'s friend list (and, with [`Direction::Both`], `owner` from
    /// theirs). A peer not in `owner`'s list fails with [`RelationError::NotFriend`].
    pub async fn delete_friends(
        &self,
        owner: &str,
        peers: Vec<String>,
        direction: Direction,
        source: &Source,
    ) -> Result<Vec<Result<(), RelationError>>, Error> {
        store::require(&*self.store, owner).await?;
        let _guard = self.writes.lock().await;
        let others: Vec<&str> = peers.iter().map(String::as_str).collect();
        let mut txn = self.begin_for(owner, &others).await?;
        let results = peers
            .iter()
            .map(|peer| {
                if !txn.exists(peer) || !txn.remove_friend(owner, peer) {
                    return Err(RelationError::NotFriend);
                }
                if direction == Direction::Both {
                    txn.remove_friend(peer, owner);
                }
                Ok(())
            })
            .collect();
        self.commit(txn, Some(Announce::by(source, owner))).await?;
        Ok(results)
    }

    /// Empties `owner`'s friend list (and, with [`Direction::Both`], removes `owner` from every friend's).
    pub async fn delete_all_friends(&self, owner: &str, direction: Direction, source: &Source) -> Result<(), Error> {
        store::require(&*self.store, owner).await?;
        let _guard = self.writes.lock().await;
        let mut txn = self.begin_for(owner, &[]).await?;
        let peers: Vec<String> = txn.user(owner).friends.keys().cloned().collect();
        if direction == Direction::Both {
            let refs: Vec<&str> = peers.iter().map(String::as_str).collect();
            let theirs = self.begin(&refs).await?;
            txn.users.extend(theirs.users);
            txn.ghosts.extend(theirs.ghosts);
        }
        for peer in &peers {
            txn.remove_friend(owner, peer);
            if direction == Direction::Both && txn.exists(peer) {
                txn.remove_friend(peer, owner);
            }
        }
        self.commit(txn, Some(Announce::by(source, owner))).await
    }

    /// `target` accepts the pending request from `from`: `target` joins `from`'s list (unless there
    /// already, whose entry is kept as it is), and with [`Direction::Both`] `from` joins `target`'s.
    pub async fn accept_friend(
        &self,
        target: &str,
        from: &str,
        direction: Direction,
        source: &Source,
    ) -> Result<(), Error> {
        let _guard = self.writes.lock().await;
        let mut txn = self.begin_for(target, &[from]).await?;
        if !txn.exists(from) {
            return Err(Error::Relation(RelationError::NoRequest));
        }
        let Some(r) = txn.remove_request(from, target, RequestEnd::Accepted) else {
            return Err(Error::Relation(RelationError::NoRequest));
        };
        let had = txn.has_friend(from, target);
        if !had && txn.friend_count(from) >= MAX_FRIENDS {
            return Err(Error::Relation(RelationError::PeerFriendLimit));
        }
        if direction == Direction::Both && !txn.has_friend(target, from) && txn.friend_count(target) >= MAX_FRIENDS {
            return Err(Error::Relation(RelationError::OwnFriendLimit));
        }
        let now = self.clock.now_secs();
        if !had {
            let mut theirs = Friend::new(target, now);
            (theirs.remark, theirs.groups, theirs.add_source, theirs.add_wording) =
                (r.remark, group_list(r.group), r.source.clone(), r.wording.clone());
            txn.put_friend(from, theirs);
        }
        if direction == Direction::Both && !txn.has_friend(target, from) {
            let mut mine = Friend::new(from, now);
            (mine.add_source, mine.add_wording) = (r.source, r.wording);
            txn.put_friend(target, mine);
        }
        self.commit(
            txn,
            Some(Announce { source, user: target, initiator: from, client_cmd: "friend_response", force: false }),
        )
        .await
    }

    /// `target` declines the pending request from `from`.
    pub async fn decline_friend(&self, target: &str, from: &str) -> Result<(), Error> {
        let _guard = self.writes.lock().await;
        let mut txn = self.begin_for(target, &[from]).await?;
        if !txn.exists(from) || txn.remove_request(from, target, RequestEnd::Declined).is_none() {
            return Err(Error::Relation(RelationError::NoRequest));
        }
        self.commit(txn, None).await
    }

    /// `owner`'s friend list, oldest first.
    pub async fn friends(&self, owner: &str) -> Result<Vec<Friend>, Error> {
        store::require(&*self.store, owner).await?;
        let mut list = self.read_user(owner, |u| u.friends.values().cloned().collect::<Vec<_>>()).await?;
        list.sort_by(|a, b| a.add_time.cmp(&b.add_time).then_with(|| a.peer.cmp(&b.peer)));
        Ok(list)
    }

    /// The requests `owner` received and sent that wait, oldest first.
    pub async fn friend_requests(&self, owner: &str) -> Result<(Vec<FriendRequest>, Vec<FriendRequest>), Error> {
        store::require(&*self.store, owner).await?;
        let (mut incoming, mut outgoing) = self
            .read_user(owner, |u| {
                (u.incoming.values().cloned().collect::<Vec<_>>(), u.outgoing.values().cloned().collect::<Vec<_>>())
            })
            .await?;
        incoming.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.from.cmp(&b.from)));
        outgoing.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.to.cmp(&b.to)));
        Ok((incoming, outgoing))
    }

    /// How `owner` and each of `peers` relate as friends; `None` for a peer that does not exist.
    pub async fn check_friends(&self, owner: &str, peers: Vec<String>) -> Result<Vec<Option<Relation>>, Error> {
        self.check(owner, peers, |u, peer| u.friends.contains_key(peer)).await
    }

    /// How `owner` and each of `peers` relate by blacklists; `None` for a peer that does not exist.
    pub async fn check_blacklists(&self, owner: &str, peers: Vec<String>) -> Result<Vec<Option<Relation>>, Error> {
        self.check(owner, peers, |u, peer| u.blacklist.contains_key(peer)).await
    }

    async fn check(
        &self,
        owner: &str,
        peers: Vec<String>,
        has: impl Fn(&UserRelations, &str) -> bool,
    ) -> Result<Vec<Option<Relation>>, Error> {
        store::require(&*self.store, owner).await?;
        let mut users: Vec<&str> = vec![owner];
        users.extend(peers.iter().map(String::as_str));
        let found = self.lookup(&users).await?;
        let empty = UserRelations::default();
        let mine = found[0].as_deref().unwrap_or(&empty);
        Ok(peers
            .iter()
            .zip(&found[1..])
            .map(|(peer, theirs)| theirs.as_deref().map(|theirs| Relation::of(has(mine, peer), has(theirs, owner))))
            .collect())
    }

    async fn read_user<R>(&self, user: &str, f: impl FnOnce(&UserRelations) -> R) -> Result<R, Error> {
        let found = self.lookup(&[user]).await?;
        Ok(f(found[0].as_deref().unwrap_or(&UserRelations::default())))
    }

    // ---- blacklists -------------------------------------------------------------------------------

    /// Adds each of `peers` to `owner`'s blacklist, removing any friendship and pending request between them.
    pub async fn add_to_blacklist(
        &self,
        owner: &str,
        peers: Vec<String>,
        source: &Source,
    ) -> Result<Vec<Result<(), RelationError>>, Error> {
        store::require(&*self.store, owner).await?;
        let now = self.clock.now_secs();
        let _guard = self.writes.lock().await;
        let others: Vec<&str> = peers.iter().map(String::as_str).collect();
        let mut txn = self.begin_for(owner, &others).await?;
        let mut results = Vec::with_capacity(peers.len());
        for peer in &peers {
            let r = if !txn.exists(peer) {
                Err(RelationError::NoSuchAccount)
            } else if peer == owner {
                Err(RelationError::IsSelf)
            } else if txn.blocks(owner, peer) {
                Err(RelationError::AlreadyBlocked)
            } else if txn.user(owner).blacklist.len() >= MAX_BLACKLIST {
                Err(RelationError::BlacklistLimit)
            } else {
                txn.put_blocked(owner, Blocked { peer: peer.clone(), time: now });
                txn.remove_friend(owner, peer);
                txn.remove_friend(peer, owner);
                txn.remove_request(owner, peer, RequestEnd::Cancelled);
                txn.remove_request(peer, owner, RequestEnd::Cancelled);
                Ok(())
            };
            results.push(r);
        }
        self.commit(txn, Some(Announce::by(source, owner))).await?;
        Ok(results)
    }

    /// Removes each of `peers` from `owner`'s blacklist.
    pub async fn remove_from_blacklist(
        &self,
        owner: &str,
        peers: Vec<String>,
        source: &Source,
    ) -> Result<Vec<Result<(), RelationError>>, Error> {
        store::require(&*self.store, owner).await?;
        let _guard = self.writes.lock().await;
        let mut txn = self.begin_for(owner, &[]).await?;
        let results = peers
            .iter()
            .map(|peer| if txn.remove_blocked(owner, peer) { Ok(()) } else { Err(RelationError::NotBlocked) })
            .collect();
        self.commit(txn, Some(Announce::by(source, owner))).await?;
        Ok(results)
    }

    /// `owner`'s blacklist, oldest first.
    pub async fn blacklist(&self, owner: &str) -> Result<Vec<Blocked>, Error> {
        store::require(&*self.store, owner).await?;
        let mut list = self
            .read_user(owner, |u| {
                u.blacklist.iter().map(|(peer, time)| Blocked { peer: peer.clone(), time: *time }).collect::<Vec<_>>()
            })
            .await?;
        list.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.peer.cmp(&b.peer)));
        Ok(list)
    }

    // ---- accounts ---------------------------------------------------------------------------------

    /// Deletes accounts with every relation row naming them (one store transaction), under the relation
    /// write lock: a relation write in flight either finished before (its rows go with the account) or
    /// begins after and finds the account gone. Then forgets them in the cache. `false` for each account
    /// that did not exist.
    pub(crate) async fn delete_accounts_and_relations(&self, ids: Vec<String>) -> Result<Vec<bool>, Error> {
        let _guard = self.writes.lock().await;
        let existed = self.store.delete_accounts(ids.clone()).await?;
        let deleted: Vec<String> = ids.iter().zip(&existed).filter(|(_, e)| **e).map(|(id, _)| id.clone()).collect();
        self.forget_deleted(&deleted);
        Ok(existed)
    }

    /// Forgets deleted accounts in the cache: their entries, and their names in the others'.
    pub(crate) fn forget_deleted(&self, ids: &[String]) {
        let deleted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        if deleted.is_empty() {
            return;
        }
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        cache.evictions += 1;
        for id in &deleted {
            cache.users.remove(*id);
        }
        for user in cache.users.values_mut() {
            let names = |u: &UserRelations| {
                deleted.iter().any(|id| {
                    u.friends.contains_key(*id)
                        || u.blacklist.contains_key(*id)
                        || u.incoming.contains_key(*id)
                        || u.outgoing.contains_key(*id)
                })
            };
            if names(user) {
                let user = Arc::make_mut(user);
                for id in &deleted {
                    user.friends.remove(*id);
                    user.blacklist.remove(*id);
                    user.incoming.remove(*id);
                    user.outgoing.remove(*id);
                }
            }
        }
    }

    /// Another node changed the relations of `users`: their cached entries go (read again at next use),
    /// and their devices here are told to read their relations again.
    pub(crate) fn changed_elsewhere(&self, users: &[String]) {
        {
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            cache.evictions += 1;
            for user in users {
                cache.users.remove(user);
            }
        }
        for user in users {
            self.hub.notify(user, Outbound::Relation(Arc::new(RelationEvent::Changed)));
        }
    }
}

/// One item of `friend_add`.
fn add_one(
    txn: &mut Txn,
    from: &str,
    item: AddFriend,
    exists: bool,
    allow: AllowType,
    direction: Direction,
    now: i64,
) -> Result<Added, RelationError> {
    let to = item.to.as_str();
    if !exists {
        return Err(RelationError::NoSuchAccount);
    }
    if to == from {
        return Err(RelationError::IsSelf);
    }
    if txn.blocks(from, to) {
        return Err(RelationError::InOwnBlacklist);
    }
    if txn.blocks(to, from) {
        return Err(RelationError::InPeerBlacklist);
    }
    let have = txn.has_friend(from, to);
    let they_have = txn.has_friend(to, from);
    if have && (they_have || direction == Direction::Single) {
        return Ok(Added::Done);
    }
    // A request the other way, or the target having added `from` already, needs no confirmation.
    let reverse = txn.users.get(from).is_some_and(|u| u.incoming.contains_key(to));
    let confirmed = allow == AllowType::AllowAny || reverse || they_have;
    if !confirmed && allow == AllowType::DenyAny {
        return Err(RelationError::PeerDeniesAll);
    }
    if !have && txn.friend_count(from) >= MAX_FRIENDS {
        return Err(RelationError::OwnFriendLimit);
    }
    if !confirmed {
        let pending = txn.users.get(to).map_or(0, |u| u.incoming.len());
        let renewing = txn.users.get(to).is_some_and(|u| u.incoming.contains_key(from));
        if pending >= MAX_PENDING && !renewing {
            return Err(RelationError::PendingLimit);
        }
        txn.put_request(FriendRequest {
            from: from.to_owned(),
            to: to.to_owned(),
            wording: item.wording,
            source: item.source,
            remark: item.remark,
            group: item.group,
            time: now,
        });
        return Ok(Added::Pending);
    }
    let both = direction == Direction::Both || reverse;
    if both && !they_have && txn.friend_count(to) >= MAX_FRIENDS {
        return Err(RelationError::PeerFriendLimit);
    }
    if reverse {
        txn.remove_request(to, from, RequestEnd::Accepted);
    }
    if !have {
        let mut friend = Friend::new(to, now);
        (friend.remark, friend.groups, friend.add_source, friend.add_wording) =
            (item.remark, group_list(item.group), item.source.clone(), item.wording.clone());
        txn.put_friend(from, friend);
    }
    if both && !they_have {
        let mut friend = Friend::new(from, now);
        (friend.add_source, friend.add_wording) = (item.source, item.wording);
        txn.put_friend(to, friend);
    }
    Ok(Added::Done)
}

fn group_list(group: String) -> Vec<String> {
    if group.is_empty() { Vec::new() } else { vec![group] }
}
