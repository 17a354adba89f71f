//! One line of the Kubernetes audit log (check-kubeapi): the parse never panics, the cheap
//! prefilter passes every line the full parse finds failed (else a denial goes unreported), and
//! the record written for it is the JSON array jq would print.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec_common::audit::Event;
use podsec_inotify::{CODE_KEY, may_have_failed};

fuzz_target!(|data: &[u8]| {
    let finder = memchr::memmem::Finder::new(CODE_KEY);
    let passed = may_have_failed(&finder, data);
    let Ok(event) = Event::parse(data) else {
        return;
    };
    let _ = event.is_access_denied();
    if !event.is_failed_request() {
        return;
    }
    assert!(passed, "the prefilter skipped a failed request");
    let record = event.forbidden_record();
    let value: serde_json::Value = serde_json::from_str(&record).expect("the record is valid JSON");
    assert_eq!(value.as_array().map(Vec::len), Some(3), "{record}");
});
