//! Mail through the local MTA: the message goes to `/usr/sbin/sendmail -i -- <address>` (postfix,
//! exim and sendmail all provide it), which queues and delivers it. No shell, no `mail` binary;
//! the address is one argument after `--`, and nothing from the data reaches a header unchecked.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;

pub const SENDMAIL: &str = "/usr/sbin/sendmail";
/// Header lines may be 998 characters; a subject is cut well before that.
const MAX_SUBJECT: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("'{0}' is not a mail address (no leading '-', whitespace, control characters or ',')")]
    BadAddress(String),
    #[error("mail to {to} failed: {detail}")]
    Send { to: String, detail: String },
}

/// A recipient as sendmail takes it: a local user (`root`) or `user@domain`. It becomes one
/// argument after `--` and the `To:` header, so it may not look like an option, hold
/// whitespace, control characters or list separators.
pub fn check_address(address: &str) -> Result<(), MailError> {
    let bad = address.is_empty()
        || address.starts_with('-')
        || address.len() > 254
        || address.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, ',' | ';' | '<' | '>' | '"')
        });
    if bad {
        Err(MailError::BadAddress(address.to_string()))
    } else {
        Ok(())
    }
}

/// The subject as a header value: one line, control characters replaced, cut to a sane length,
/// RFC 2047 encoded when it is not plain ASCII.
pub fn subject_header(subject: &str) -> String {
    let mut line: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() > MAX_SUBJECT {
        line = line.chars().take(MAX_SUBJECT - 3).collect();
        line.push_str("...");
    }
    if line.is_ascii() {
        line
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(line.as_bytes())
        )
    }
}

/// The whole message: headers, a blank line, the body.
pub fn message(to: &str, subject: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "To: {to}\nSubject: {}\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n",
        subject_header(subject)
    )
    .into_bytes();
    message.extend_from_slice(body);
    if !body.ends_with(b"\n") {
        message.push(b'\n');
    }
    message
}

/// Hands the message to sendmail and waits for it to accept it.
pub fn send(to: &str, subject: &str, body: &[u8]) -> Result<(), MailError> {
    check_address(to)?;
    let failed = |detail: String| MailError::Send {
        to: to.to_string(),
        detail,
    };
    let mut child = Command::new(SENDMAIL)
        .args(["-i", "--", to])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run {SENDMAIL}: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = stdin.write_all(&message(to, subject, body));
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    written.map_err(|e| failed(format!("writing to {SENDMAIL}: {e}")))?;
    if !output.status.success() {
        return Err(failed(format!(
            "{SENDMAIL} {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_could_be_options_or_headers_are_refused() {
        for good in ["root", "sec@example.org", "a.b+c@d-e.f"] {
            check_address(good).unwrap();
        }
        for bad in ["", "-oQ/tmp", "a b", "a\nBcc: x", "a,b", "<a@b>", "\"a\"@b"] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_subject_stays_one_header_line() {
        assert_eq!(subject_header("POLICY CRITICAL - x"), "POLICY CRITICAL - x");
        assert_eq!(subject_header("a\nBcc: evil"), "a Bcc: evil");
        let long = subject_header(&"x".repeat(1000));
        assert_eq!(long.len(), MAX_SUBJECT);
        assert_eq!(
            subject_header("Пользователи"),
            "=?UTF-8?B?0J/QvtC70YzQt9C+0LLQsNGC0LXQu9C4?="
        );
        let message = String::from_utf8(message("root", "s", b"body")).unwrap();
        assert!(message.starts_with("To: root\nSubject: s\n"), "{message}");
        assert!(message.ends_with("\n\nbody\n"), "{message}");
    }
}
