//! Kubernetes audit events (`audit.k8s.io/v1` Event, one JSON object per line of the apiserver's
//! audit log): only the fields podsec reads. Unknown fields are skipped, so newer apiservers and
//! richer audit levels (request and response bodies) parse the same.
//!
//! Strings borrow from the line when they hold no escapes: the kubeapi watcher parses millions of
//! lines and copies almost nothing.

use std::borrow::Cow;

/// Where a control plane's API server audits (upstream's paths): the directory, root-owned
/// and sticky so that the API server (u7s-admin) can write and rotate its log in it but not
/// replace the policy; the policy; the log that podsec-inotify-check-kubeapi reads.
pub const AUDIT_DIR: &str = "/etc/kubernetes/audit";
pub const POLICY_PATH: &str = "/etc/kubernetes/audit/policy.yaml";
pub const LOG_PATH: &str = "/etc/kubernetes/audit/audit.log";

use serde::{Deserialize, Deserializer, Serialize};

/// One audit event.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    #[serde(
        rename = "auditID",
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub audit_id: Option<Cow<'a, str>>,
    /// RequestReceived, ResponseStarted, ResponseComplete or Panic.
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub stage: Option<Cow<'a, str>>,
    #[serde(
        rename = "requestURI",
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_uri: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub verb: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo<'a>>,
    #[serde(
        rename = "sourceIPs",
        borrow,
        default,
        deserialize_with = "texts",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ips: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectReference<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<Status<'a>>,
    /// MicroTime, RFC 3339 with microseconds; kept as written.
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_received_timestamp: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct UserInfo<'a> {
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub username: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "texts",
        skip_serializing_if = "Option::is_none"
    )]
    pub groups: Option<Vec<Cow<'a, str>>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference<'a> {
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub resource: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_group: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_version: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub subresource: Option<Cow<'a, str>>,
}

/// meta/v1 Status as the audit event carries it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Status<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub message: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason: Option<Cow<'a, str>>,
}

/// serde borrows a `Cow<str>` only when it is the field's whole type, not inside `Option` or
/// `Vec`: these wrap it so that unescaped strings stay borrowed.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

fn text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

fn texts<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Cow<'a, str>>>, D::Error> {
    Ok(Option::<Vec<Borrowed<'a>>>::deserialize(d)?.map(|v| v.into_iter().map(|b| b.0).collect()))
}

/// The fields of an event that its forbidden.log record, its code and its audit ID need.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    #[serde(rename = "auditID", borrow, default, deserialize_with = "text")]
    audit_id: Option<Cow<'a, str>>,
    #[serde(rename = "sourceIPs", borrow, default, deserialize_with = "texts")]
    source_ips: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    response_status: Option<Status<'a>>,
    #[serde(borrow, default, deserialize_with = "text")]
    request_received_timestamp: Option<Cow<'a, str>>,
}

impl<'a> Event<'a> {
    /// Parses one line of the audit log (without its newline).
    pub fn parse(line: &'a [u8]) -> Result<Event<'a>, serde_json::Error> {
        serde_json::from_slice(line)
    }

    /// Like [`Event::parse`], with only auditID, sourceIPs, responseStatus and
    /// requestReceivedTimestamp: every other field is skipped as any JSON value (checked for
    /// syntax, not type, as jq reads it), which spares the kubeapi reader most of a selected
    /// line's parse.
    pub fn parse_summary(line: &'a [u8]) -> Result<Event<'a>, serde_json::Error> {
        let summary: Summary<'a> = serde_json::from_slice(line)?;
        Ok(Event {
            audit_id: summary.audit_id,
            source_ips: summary.source_ips,
            response_status: summary.response_status,
            request_received_timestamp: summary.request_received_timestamp,
            ..Event::default()
        })
    }

    pub fn code(&self) -> Option<i64> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    /// Answered with 400 or more: what upstream records (not only denials; 404 and 409 too).
    pub fn is_failed_request(&self) -> bool {
        self.code().is_some_and(|c| c >= 400)
    }

    /// 401 Unauthorized or 403 Forbidden.
    pub fn is_access_denied(&self) -> bool {
        matches!(self.code(), Some(401 | 403))
    }

    /// The upstream record, byte for byte what
    /// `jq -c '[.requestReceivedTimestamp, .sourceIPs[0], .responseStatus.message]'` prints
    /// (missing fields are `null`), without a newline.
    pub fn forbidden_record(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push('[');
        push_jq_string(&mut out, self.request_received_timestamp.as_deref());
        out.push(',');
        push_jq_string(
            &mut out,
            self.source_ips
                .as_ref()
                .and_then(|ips| ips.first())
                .map(|ip| ip.as_ref()),
        );
        out.push(',');
        push_jq_string(
            &mut out,
            self.response_status
                .as_ref()
                .and_then(|s| s.message.as_deref()),
        );
        out.push(']');
        out
    }
}

/// A JSON string as jq writes it: `"` and `\` escaped, `\b \f \n \r \t` short, other control
/// characters and DEL as `\u00xx` (lowercase), everything else raw UTF-8; `None` is `null`.
fn push_jq_string(out: &mut String, value: Option<&str>) {
    let Some(value) = value else {
        out.push_str("null");
        return;
    };
    out.push('"');
    // Copy runs of bytes that need no escape in one go; every byte to escape is ASCII, so the
    // runs split only at character boundaries.
    let bytes = value.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 || b == 0x7f => "",
            _ => continue,
        };
        out.push_str(&value[run..i]);
        if escaped.is_empty() {
            out.push_str(&format!("\\u{:04x}", b));
        } else {
            out.push_str(escaped);
        }
        run = i + 1;
    }
    out.push_str(&value[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORBIDDEN: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"0c6f2b54-1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"alice","groups":["system:authenticated"],"extra":{"x":["y"]}},"sourceIPs":["10.0.0.5","10.0.0.6"],"userAgent":"kubectl/v1.30","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","message":"pods is forbidden: User \"alice\" cannot list resource \"pods\"","reason":"Forbidden","code":403},"requestReceivedTimestamp":"2024-05-01T10:00:00.123456Z","stageTimestamp":"2024-05-01T10:00:00.124000Z","annotations":{"authorization.k8s.io/decision":"forbid"}}"#;

    #[test]
    fn parses_the_fields_we_read_and_skips_the_rest() {
        let event = Event::parse(FORBIDDEN.as_bytes()).unwrap();
        assert_eq!(event.audit_id.as_deref(), Some("0c6f2b54-1"));
        assert_eq!(event.stage.as_deref(), Some("ResponseComplete"));
        assert_eq!(event.verb.as_deref(), Some("list"));
        assert_eq!(
            event.request_uri.as_deref(),
            Some("/api/v1/namespaces/default/pods")
        );
        let user = event.user.as_ref().unwrap();
        assert_eq!(user.username.as_deref(), Some("alice"));
        assert_eq!(user.groups.as_ref().unwrap()[0], "system:authenticated");
        assert_eq!(
            event.object_ref.as_ref().unwrap().resource.as_deref(),
            Some("pods")
        );
        assert_eq!(event.code(), Some(403));
        assert_eq!(
            event.response_status.as_ref().unwrap().reason.as_deref(),
            Some("Forbidden")
        );
        assert!(event.is_failed_request());
        assert!(event.is_access_denied());
        // no escapes: borrowed from the line
        assert!(matches!(event.verb, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn summary_has_what_the_record_needs() {
        let full = Event::parse(FORBIDDEN.as_bytes()).unwrap();
        let summary = Event::parse_summary(FORBIDDEN.as_bytes()).unwrap();
        assert_eq!(summary.forbidden_record(), full.forbidden_record());
        assert_eq!(summary.audit_id, full.audit_id);
        assert_eq!(summary.response_status, full.response_status);
        assert_eq!(summary.user, None);
        for line in [
            r#"{"responseStatus":{"code":404}}"#,
            r#"{"responseStatus":null,"sourceIPs":null}"#,
            r#"{"sourceIPs":[],"responseStatus":{"code":500,"message":"a\u0001\"b"}}"#,
        ] {
            let full = Event::parse(line.as_bytes()).unwrap();
            let summary = Event::parse_summary(line.as_bytes()).unwrap();
            assert_eq!(
                summary.forbidden_record(),
                full.forbidden_record(),
                "{line}"
            );
            assert_eq!(summary.code(), full.code(), "{line}");
        }
        // fields it does not read need only be JSON
        let odd = Event::parse_summary(br#"{"user":5,"responseStatus":{"code":403}}"#).unwrap();
        assert_eq!(odd.code(), Some(403));
    }

    #[test]
    fn record_matches_jq() {
        let event = Event::parse(FORBIDDEN.as_bytes()).unwrap();
        assert_eq!(
            event.forbidden_record(),
            r#"["2024-05-01T10:00:00.123456Z","10.0.0.5","pods is forbidden: User \"alice\" cannot list resource \"pods\""]"#
        );
        let sparse = Event::parse(br#"{"responseStatus":{"code":404}}"#).unwrap();
        assert_eq!(sparse.forbidden_record(), "[null,null,null]");
        assert!(sparse.is_failed_request());
        assert!(!sparse.is_access_denied());
    }

    #[test]
    fn jq_escapes() {
        let mut out = String::new();
        push_jq_string(
            &mut out,
            Some("x\u{7f}y\u{1}\u{8}\u{c}\n\r\t/\"\\é\u{2028}😀"),
        );
        assert_eq!(
            out,
            "\"x\\u007fy\\u0001\\b\\f\\n\\r\\t/\\\"\\\\é\u{2028}😀\""
        );
    }

    #[test]
    fn successes_and_early_stages_are_not_failed_requests() {
        let ok =
            Event::parse(br#"{"stage":"ResponseComplete","responseStatus":{"code":200}}"#).unwrap();
        assert!(!ok.is_failed_request());
        let received = Event::parse(br#"{"stage":"RequestReceived"}"#).unwrap();
        assert!(!received.is_failed_request());
        let null_status = Event::parse(br#"{"responseStatus":null,"sourceIPs":null}"#).unwrap();
        assert!(!null_status.is_failed_request());
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(Event::parse(b"{\"stage\":").is_err());
        assert!(Event::parse_summary(b"{\"stage\":").is_err());
        assert!(Event::parse_summary(b"not json").is_err());
        assert!(Event::parse_summary(br#"{"responseStatus":{"code":"403"}}"#).is_err());
        assert!(Event::parse(b"not json").is_err());
        assert!(Event::parse(br#"{"responseStatus":{"code":"403"}}"#).is_err());
    }
}
