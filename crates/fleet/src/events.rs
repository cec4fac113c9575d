//! Object notifications as the events queue receives them: an S3 event
//! notification sent straight to SQS, the same wrapped in an SNS envelope (an
//! SNS topic such as NOAA's `NewGOES16Object`, subscribed without raw message
//! delivery), or S3's `s3:TestEvent`, sent once when a notification is set up.
//!
//! Pure: bodies in, object events or a reason out. The S3 record layout is
//! `aws_lambda_events`'s; only the SNS envelope (two fields) is read by hand.

use aws_lambda_events::event::s3::S3Event;
use serde::Serialize;

/// One object created or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectEvent {
    /// The bucket.
    pub bucket: String,
    /// The key, decoded (notifications carry it form-encoded: `+` for a space).
    pub key: String,
    /// The event name without its `s3:` prefix (`ObjectCreated:Put`, `ObjectRemoved:Delete`).
    pub event: String,
    /// When S3 says it happened, RFC 3339.
    pub event_time: String,
}

impl ObjectEvent {
    /// The object's URL, `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Whether the object was removed (else it was created or overwritten).
    pub fn removed(&self) -> bool {
        self.event.starts_with("ObjectRemoved")
    }
}

/// What one message of the events queue holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// S3's test message (`s3:TestEvent`): nothing to do.
    Test,
    /// Objects created or removed.
    Objects(Vec<ObjectEvent>),
    /// floe's own request to plan a group again ([`replan_body`]): the
    /// committer refused its append, and no notification may come to retry it.
    Replan {
        /// The group path.
        group: String,
    },
}

/// The body of a request to plan `group` again, for the events queue.
pub fn replan_body(group: &str, reason: &str) -> String {
    serde_json::json!({"floe_replan": {"group": group, "reason": reason}}).to_string()
}

/// Why a message is not a notification floe can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 object notification: {0}")]
pub struct NotificationError(pub String);

/// Reads one message body.
pub fn parse(body: &str) -> Result<Notification, NotificationError> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| NotificationError(format!("the body is not JSON ({e})")))?;
    // SNS envelope: {"Type": "Notification", "Message": "<the S3 event as a string>", …}.
    if value.get("Type").and_then(|t| t.as_str()) == Some("Notification") {
        let inner = value
            .get("Message")
            .and_then(|m| m.as_str())
            .ok_or_else(|| {
                NotificationError("an SNS notification without a Message string".into())
            })?;
        return parse(inner);
    }
    if value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    if let Some(replan) = value.get("floe_replan") {
        let group = replan
            .get("group")
            .and_then(|g| g.as_str())
            .ok_or_else(|| NotificationError("a floe_replan request without a group".into()))?;
        return Ok(Notification::Replan {
            group: group.to_string(),
        });
    }
    if value.get("Records").is_none() {
        return Err(NotificationError(
            "no Records (expected an S3 event notification, straight or in an SNS envelope)".into(),
        ));
    }
    let event: S3Event = serde_json::from_value(value)
        .map_err(|e| NotificationError(format!("its Records do not read as S3 events: {e}")))?;
    let mut objects = Vec::with_capacity(event.records.len());
    for (i, record) in event.records.into_iter().enumerate() {
        let missing = |what: &str| NotificationError(format!("record {i} has no {what}"));
        let bucket = record
            .s3
            .bucket
            .name
            .ok_or_else(|| missing("bucket name"))?;
        let key = record.s3.object.key.ok_or_else(|| missing("object key"))?;
        let name = record.event_name.ok_or_else(|| missing("eventName"))?;
        let event = name.strip_prefix("s3:").unwrap_or(&name).to_string();
        if !(event.starts_with("ObjectCreated") || event.starts_with("ObjectRemoved")) {
            return Err(NotificationError(format!(
                "record {i} is a {name} event; floe reads ObjectCreated and ObjectRemoved"
            )));
        }
        objects.push(ObjectEvent {
            bucket,
            key: decode_key(&key).map_err(|e| NotificationError(format!("record {i}: {e}")))?,
            event,
            event_time: record.event_time.to_rfc3339(),
        });
    }
    Ok(Notification::Objects(objects))
}

/// S3 notifications form-encode keys: `+` is a space, `%2B` a plus.
fn decode_key(key: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(&key.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| format!("key {key:?} does not decode to UTF-8 ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3_event(name: &str, key: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-12-04T10:00:00.000Z", "eventName": name,
            "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
            "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
            "bucket": {"name": "noaa-goes16", "ownerIdentity": {"principalId": "x"}, "arn": "arn:aws:s3:::noaa-goes16"},
            "object": {"key": key, "size": 12, "eTag": "abc", "sequencer": "0A"}}}]})
        .to_string()
    }

    #[test]
    fn straight_and_sns_wrapped_notifications_read_the_same() {
        let body = s3_event("ObjectCreated:Put", "ABI-L2/2026/338/file+name%2B1.nc");
        let straight = parse(&body).expect("straight");
        let wrapped = serde_json::json!({"Type": "Notification", "MessageId": "m",
            "TopicArn": "arn:aws:sns:us-east-1:123:NewGOES16Object", "Message": body})
        .to_string();
        assert_eq!(parse(&wrapped).expect("sns"), straight);
        let Notification::Objects(objects) = straight else {
            panic!("objects expected")
        };
        assert_eq!(objects[0].key, "ABI-L2/2026/338/file name+1.nc");
        assert_eq!(
            objects[0].url(),
            "s3://noaa-goes16/ABI-L2/2026/338/file name+1.nc"
        );
        assert!(!objects[0].removed());
        assert_eq!(objects[0].event_time, "2026-12-04T10:00:00+00:00");
    }

    #[test]
    fn removals_test_events_and_garbage() {
        let Notification::Objects(o) =
            parse(&s3_event("ObjectRemoved:Delete", "a/b.nc")).expect("removed")
        else {
            panic!("objects expected")
        };
        assert!(o[0].removed());
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-04T10:00:00Z","Bucket":"b"}"#;
        assert_eq!(parse(test).expect("test event"), Notification::Test);
        assert_eq!(
            parse(&replan_body("MUR", "append refused")).expect("replan"),
            Notification::Replan {
                group: "MUR".into()
            }
        );
        for (body, says) in [
            ("not json", "not JSON"),
            (r#"{"hello": 1}"#, "no Records"),
            (
                r#"{"Type": "Notification", "Message": 3}"#,
                "without a Message",
            ),
            (
                r#"{"Records": [{"eventName": "x"}]}"#,
                "do not read as S3 events",
            ),
        ] {
            let e = parse(body).expect_err(body).to_string();
            assert!(e.contains(says), "{body}: {e}");
        }
        let e = parse(&s3_event("ObjectRestore:Completed", "a.nc")).expect_err("restore");
        assert!(e.to_string().contains("ObjectRestore:Completed"), "{e}");
    }
}
