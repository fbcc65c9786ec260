//! The multi-device policy and session registration, as tables: who is kicked, who stays, and what
//! presence says.

use super::*;

fn kicked(session: &mut Session) -> Option<KickReason> {
    match session.events.try_recv() {
        Ok(Outbound::Kicked(reason)) => Some(reason),
        _ => None,
    }
}

#[test]
fn a_second_device_kicks_the_first_only_where_the_policy_says() {
    use MultiLogin::*;
    use Platform::*;
    #[rustfmt::skip]
    let table = [
        // mode, instances, first, second, is the first kicked
        (Single, 1, IPhone,  Web,     true),
        (Single, 1, Pc,      Android, true),
        (Dual,   1, IPhone,  Web,     false),
        (Dual,   1, IPhone,  Android, true),
        (Dual,   1, Pc,      Android, true),
        (Triple, 1, IPhone,  Pc,      false),
        (Triple, 1, IPhone,  Android, true),
        (Triple, 1, Pc,      Mac,     true),
        (Triple, 1, Web,     Mac,     false),
        (Multi,  1, IPhone,  Android, false),
        (Multi,  1, IPhone,  IPhone,  true),
        (Multi,  2, IPhone,  IPhone,  false),
        (Triple, 2, Android, IPhone,  false),
    ];
    for (i, (mode, instances, first, second, first_kicked)) in table.into_iter().enumerate() {
        let hub = Hub::default();
        let policy = LoginPolicy { mode, instances };
        let mut a = hub.register(policy, "u", first, "device-a", SessionKind::Device);
        let mut b = hub.register(policy, "u", second, "device-b", SessionKind::Device);
        let expected = first_kicked.then_some(KickReason::OtherDevice);
        assert_eq!(kicked(&mut a), expected, "row {i}: {mode:?}×{instances}, {first:?} then {second:?}");
        assert_eq!(kicked(&mut b), None, "row {i}: the newer device stays");
        let online = match hub.presence("u", 0) {
            Presence::Online(platforms) => platforms.len(),
            other => panic!("row {i}: {other:?}"),
        };
        assert_eq!(online, if first_kicked { 1 } else { 2 }, "row {i}");
    }
}

#[test]
fn the_same_device_again_replaces_its_old_connection() {
    let hub = Hub::default();
    let policy = LoginPolicy { mode: MultiLogin::Multi, instances: 3 };
    let mut old = hub.register(policy, "u", Platform::Android, "phone", SessionKind::Device);
    let mut new = hub.register(policy, "u", Platform::Android, "phone", SessionKind::Device);
    assert_eq!(kicked(&mut old), Some(KickReason::Replaced));
    assert_eq!(kicked(&mut new), None);
    assert_eq!(hub.presence("u", 0), Presence::Online(vec![Platform::Android]));
}

#[test]
fn transient_sessions_stand_outside_the_policy_and_are_bounded() {
    let hub = Hub::default();
    let policy = LoginPolicy { mode: MultiLogin::Single, instances: 1 };
    let mut device = hub.register(policy, "u", Platform::IPhone, "phone", SessionKind::Device);
    let mut tools: Vec<Session> = (0..MAX_TRANSIENT_SESSIONS)
        .map(|i| hub.register(policy, "u", Platform::Pc, &format!("tool-{i}"), SessionKind::Transient { live: false }))
        .collect();
    assert_eq!(kicked(&mut device), None, "a transient session kicks no device");
    assert_eq!(hub.presence("u", 0), Presence::Online(vec![Platform::IPhone]), "nor shows in presence");
    let mut newest = hub.register(policy, "u", Platform::Pc, "tool-new", SessionKind::Transient { live: false });
    assert_eq!(kicked(&mut tools[0]), Some(KickReason::Replaced), "the oldest goes past the bound");
    for tool in &mut tools[1..] {
        assert_eq!(kicked(tool), None);
    }
    assert_eq!(kicked(&mut newest), None);
    // And a device's login does not kick them.
    let mut other = hub.register(policy, "u", Platform::Android, "phone-2", SessionKind::Device);
    assert_eq!(kicked(&mut device), Some(KickReason::OtherDevice));
    assert_eq!(kicked(&mut tools[1]), None);
    assert_eq!(kicked(&mut other), None);
}

#[test]
fn a_mobile_device_that_drops_leaves_the_user_push_online_and_a_login_ends_it() {
    let hub = Hub::default();
    let policy = LoginPolicy::default();
    let phone = hub.register(policy, "u", Platform::IPhone, "phone", SessionKind::Device);
    hub.unregister(&phone, Some(100));
    assert_eq!(hub.presence("u", 100), Presence::PushOnline(Platform::IPhone));
    assert_eq!(hub.presence("u", 100 + PUSH_ONLINE_SECS + 1), Presence::Offline, "for 7 days at most");
    let pc = hub.register(policy, "u", Platform::Pc, "pc", SessionKind::Device);
    hub.unregister(&pc, Some(200));
    assert_eq!(hub.presence("u", 200), Presence::Offline, "a desktop that drops is offline");
    let web = hub.register(policy, "u", Platform::Web, "web", SessionKind::Device);
    hub.unregister(&web, None);
    assert_eq!(hub.presence("u", 300), Presence::Offline);
}
