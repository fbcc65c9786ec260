//! What a push says: Tencent's `OfflinePushInfo` where the message has one, else a default text per
//! element type in the device's language. Pure functions of the stored message, tested by table.

use std::collections::HashMap;

use serde_json::Value;

use super::provider::{AndroidOptions, ApnsOptions, Notification};
use crate::model::PushMessage;

/// The default texts of one language: what a notification says for an element without text of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Texts {
    pub image: String,
    pub sound: String,
    pub file: String,
    pub video: String,
    pub face: String,
    pub location: String,
    /// Any other element.
    pub other: String,
}

impl Texts {
    pub fn english() -> Texts {
        Texts {
            image: "[Image]".into(),
            sound: "[Voice]".into(),
            file: "[File]".into(),
            video: "[Video]".into(),
            face: "[Face]".into(),
            location: "[Location]".into(),
            other: "[Message]".into(),
        }
    }

    pub fn chinese() -> Texts {
        Texts {
            image: "[图片]".into(),
            sound: "[语音]".into(),
            file: "[文件]".into(),
            video: "[视频]".into(),
            face: "[表情]".into(),
            location: "[位置]".into(),
            other: "[消息]".into(),
        }
    }
}

/// The default texts by language (`en`, `zh`, …), and the language of devices that named none (or one
/// not configured).
#[derive(Debug, Clone)]
pub struct Languages {
    pub default: String,
    pub texts: HashMap<String, Texts>,
}

impl Default for Languages {
    /// English (the default) and Chinese.
    fn default() -> Languages {
        let texts = HashMap::from([("en".to_owned(), Texts::english()), ("zh".to_owned(), Texts::chinese())]);
        Languages { default: "en".into(), texts }
    }
}

impl Languages {
    /// The texts for `lang` (`zh-CN` finds `zh`), else the default language's, else English.
    pub fn texts(&self, lang: Option<&str>) -> Texts {
        let find =
            |l: &str| self.texts.get(l).or_else(|| l.split(['-', '_']).next().and_then(|base| self.texts.get(base)));
        lang.and_then(find).or_else(|| find(&self.default)).cloned().unwrap_or_else(Texts::english)
    }
}

/// Whether a message with this `OfflinePushInfo` (JSON) may be pushed at all: not with `PushFlag` 1.
pub fn may_push(push_info: Option<&str>) -> bool {
    let Some(info) = push_info else { return true };
    let flag = serde_json::from_str::<Value>(info).ok().and_then(|v| v.get("PushFlag").and_then(Value::as_i64));
    flag != Some(1)
}

/// The notification for `message`, in `texts`, with `badge`; `None` when nothing is to be pushed (`PushFlag`
/// 1, or a message of custom elements without a `Desc` and no `OfflinePushInfo.Desc`, as Tencent does).
/// `badge` is dropped when `ApnsInfo.BadgeMode` is 1.
pub fn notification(message: &PushMessage, texts: &Texts, badge: Option<u64>) -> Option<Notification> {
    let info: Value = message.push_info.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
    if info.get("PushFlag").and_then(Value::as_i64) == Some(1) {
        return None;
    }
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let number = |v: &Value, key: &str| v.get(key).and_then(Value::as_i64);
    let body = match text(&info, "Desc") {
        desc if !desc.is_empty() => desc,
        _ => default_text(&message.body, texts)?,
    };
    let title = match text(&info, "Title") {
        title if !title.is_empty() => title,
        _ => message.sender_nick.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| message.from.clone()),
    };
    let apns = info.get("ApnsInfo").cloned().unwrap_or(Value::Null);
    let android = info.get("AndroidInfo").cloned().unwrap_or(Value::Null);
    let badge = if number(&apns, "BadgeMode") == Some(1) { None } else { badge };
    Some(Notification {
        title,
        body,
        ext: text(&info, "Ext"),
        badge,
        from: message.from.clone(),
        to: message.to.clone(),
        msg_key: message.key.to_string(),
        apns: ApnsOptions {
            sound: text(&apns, "Sound"),
            subtitle: text(&apns, "SubTitle"),
            image: text(&apns, "Image"),
            mutable_content: number(&apns, "MutableContent") == Some(1),
            voip: number(&apns, "PushType") == Some(1),
            interruption_level: text(&apns, "InterruptionLevel"),
        },
        android: AndroidOptions {
            sound: text(&android, "Sound"),
            huawei_channel_id: text(&android, "HuaWeiChannelID"),
            huawei_category: text(&android, "HuaWeiCategory"),
            huawei_importance: text(&android, "HuaWeiImportance"),
            huawei_image: text(&android, "HuaWeiImage"),
            honor_importance: text(&android, "HonorImportance"),
            honor_image: text(&android, "HonorImage"),
            xiaomi_channel_id: text(&android, "XiaoMiChannelID"),
            oppo_channel_id: text(&android, "OPPOChannelID"),
            oppo_category: text(&android, "OPPOCategory"),
            oppo_notify_level: number(&android, "OPPONotifyLevel"),
            google_channel_id: text(&android, "GoogleChannelID"),
            google_image: text(&android, "GoogleImage"),
            vivo_classification: number(&android, "VIVOClassification"),
            vivo_category: text(&android, "VIVOCategory"),
        },
    })
}

/// The text of a message body (`MsgBody`, compact JSON) for a notification: its text elements' texts, or
/// the placeholder of its first element, or a custom element's `Desc`; `None` for custom elements without
/// a `Desc` only.
fn default_text(body: &str, texts: &Texts) -> Option<String> {
    let elems: Vec<Value> = serde_json::from_str(body).unwrap_or_default();
    let field = |e: &Value, key: &str| {
        e.get("MsgContent").and_then(|c| c.get(key)).and_then(Value::as_str).unwrap_or_default().to_owned()
    };
    let text: Vec<String> = elems
        .iter()
        .filter(|e| e.get("MsgType").and_then(Value::as_str) == Some("TIMTextElem"))
        .map(|e| field(e, "Text"))
        .filter(|t| !t.is_empty())
        .collect();
    if !text.is_empty() {
        return Some(text.join(" "));
    }
    for e in &elems {
        let placeholder = match e.get("MsgType").and_then(Value::as_str).unwrap_or_default() {
            "TIMImageElem" => &texts.image,
            "TIMSoundElem" => &texts.sound,
            "TIMFileElem" => &texts.file,
            "TIMVideoFileElem" => &texts.video,
            "TIMFaceElem" => &texts.face,
            "TIMLocationElem" => &texts.location,
            "TIMCustomElem" => match field(e, "Desc") {
                desc if !desc.is_empty() => return Some(desc),
                _ => continue,
            },
            "TIMTextElem" => continue,
            _ => &texts.other,
        };
        return Some(placeholder.clone());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MsgKey;

    fn message(body: &str, push_info: Option<&str>, nick: Option<&str>) -> PushMessage {
        PushMessage {
            from: "alice".into(),
            to: "bob".into(),
            key: MsgKey { seq: 1, random: 7, time: 1_700_000_000 },
            body: body.into(),
            push_info: push_info.map(str::to_owned),
            sender_nick: nick.map(str::to_owned),
        }
    }

    #[test]
    fn default_texts_by_element() {
        let en = Texts::english();
        let zh = Texts::chinese();
        let cases: &[(&str, &Texts, Option<&str>)] = &[
            (r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]"#, &en, Some("hi")),
            (
                r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a"}},{"MsgType":"TIMFaceElem","MsgContent":{"Index":1}},{"MsgType":"TIMTextElem","MsgContent":{"Text":"b"}}]"#,
                &en,
                Some("a b"),
            ),
            (r#"[{"MsgType":"TIMImageElem","MsgContent":{}}]"#, &en, Some("[Image]")),
            (r#"[{"MsgType":"TIMImageElem","MsgContent":{}}]"#, &zh, Some("[图片]")),
            (r#"[{"MsgType":"TIMLocationElem","MsgContent":{"Desc":"here"}}]"#, &en, Some("[Location]")),
            (r#"[{"MsgType":"TIMSoundElem","MsgContent":{}}]"#, &en, Some("[Voice]")),
            (r#"[{"MsgType":"TIMFileElem","MsgContent":{}}]"#, &en, Some("[File]")),
            (r#"[{"MsgType":"TIMVideoFileElem","MsgContent":{}}]"#, &en, Some("[Video]")),
            (r#"[{"MsgType":"TIMFaceElem","MsgContent":{}}]"#, &en, Some("[Face]")),
            (r#"[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"x","Desc":"a gift"}}]"#, &en, Some("a gift")),
            (r#"[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"x"}}]"#, &en, None),
            (r#"[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"x","Desc":""}}]"#, &en, None),
            ("not json", &en, None),
        ];
        for (body, texts, want) in cases {
            let got = notification(&message(body, None, None), texts, None).map(|n| n.body);
            assert_eq!(got.as_deref(), *want, "{body}");
        }
    }

    #[test]
    fn offline_push_info_overrides_the_defaults() {
        let custom = r#"[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"x"}}]"#;
        let info = r#"{"PushFlag":0,"Title":"T","Desc":"D","Ext":"{\"k\":1}",
            "ApnsInfo":{"Sound":"ding.aiff","BadgeMode":1,"SubTitle":"S","Image":"https://i","MutableContent":1,"PushType":1},
            "AndroidInfo":{"XiaoMiChannelID":"xm","OPPOChannelID":"op","VIVOClassification":0,"HuaWeiCategory":"IM"}}"#;
        let n = notification(&message(custom, Some(info), Some("Alice")), &Texts::english(), Some(5)).unwrap();
        assert_eq!((n.title.as_str(), n.body.as_str(), n.ext.as_str()), ("T", "D", r#"{"k":1}"#));
        assert_eq!(n.badge, None, "BadgeMode 1 leaves the badge alone");
        assert_eq!(n.apns.sound, "ding.aiff");
        assert_eq!(n.apns.subtitle, "S");
        assert!(n.apns.mutable_content && n.apns.voip);
        assert_eq!(n.android.xiaomi_channel_id, "xm");
        assert_eq!(n.android.oppo_channel_id, "op");
        assert_eq!(n.android.vivo_classification, Some(0));
        assert_eq!(n.android.huawei_category, "IM");
        assert_eq!(n.msg_key, "1_7_1700000000");
    }

    #[test]
    fn the_title_is_the_senders_nickname_else_its_user_id() {
        let text = r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]"#;
        let en = Texts::english();
        assert_eq!(notification(&message(text, None, Some("Alice")), &en, Some(3)).unwrap().title, "Alice");
        assert_eq!(notification(&message(text, None, Some("")), &en, None).unwrap().title, "alice");
        assert_eq!(notification(&message(text, None, None), &en, Some(3)).unwrap().badge, Some(3));
    }

    #[test]
    fn push_flag_one_is_never_pushed() {
        let text = r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]"#;
        assert!(!may_push(Some(r#"{"PushFlag":1}"#)));
        assert!(may_push(Some(r#"{"PushFlag":0,"Desc":"x"}"#)));
        assert!(may_push(None));
        assert_eq!(notification(&message(text, Some(r#"{"PushFlag":1}"#), None), &Texts::english(), None), None);
    }

    #[test]
    fn languages_fall_back_to_their_base_then_the_default() {
        let langs = Languages::default();
        assert_eq!(langs.texts(Some("zh-CN")).image, "[图片]");
        assert_eq!(langs.texts(Some("fr")).image, "[Image]");
        assert_eq!(langs.texts(None).image, "[Image]");
        let zh_default = Languages { default: "zh".into(), ..Languages::default() };
        assert_eq!(zh_default.texts(Some("de")).image, "[图片]");
    }
}
