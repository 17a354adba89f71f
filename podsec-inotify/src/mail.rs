//! Mail to an administrator through the local MTA's sendmail interface (postfix, exim and
//! sendmail all provide `/usr/sbin/sendmail`): the address is one argument after `--`, and
//! neither it nor the subject can add a header or an option.

use std::io::Write;
use std::process::{Command, Stdio};

use podsec_common::i18n::Message;
use podsec_common::msg;

use crate::check_containers::escape;

pub const SENDMAIL: &str = "/usr/sbin/sendmail";

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum MailError {
    #[error("'{0}' is not a mail address")]
    BadAddress(String),
    #[error("mail to {to} failed: {detail}")]
    Failed { to: String, detail: Message },
}

/// A recipient as given on the command line: a local name or `user@domain`, never an option,
/// whitespace or a control character.
pub fn check_address(address: &str) -> Result<(), MailError> {
    if address.is_empty()
        || address.starts_with('-')
        || address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '<' | '>' | '"'))
    {
        return Err(MailError::BadAddress(escape(address.as_bytes())));
    }
    Ok(())
}

/// The message as sendmail receives it (`-i`: a line with a single dot does not end it).
pub fn message(to: &str, subject: &str, body: &str) -> String {
    format!(
        "To: {to}\nSubject: {}\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}",
        escape(subject.as_bytes())
    )
}

/// Sends one message; fails unless sendmail accepted it.
pub fn send(to: &str, subject: &str, body: &str) -> Result<(), MailError> {
    check_address(to)?;
    let failed = |detail: Message| MailError::Failed {
        to: to.to_string(),
        detail,
    };
    // Outside the host seam: handing the message to sendmail is the work itself.
    let mut child = Command::new(SENDMAIL)
        .args(["-i", "--", to])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(msg!("cannot run {SENDMAIL}: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = stdin.write_all(message(to, subject, body).as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|e| failed(Message::verbatim(e.to_string())))?;
    written.map_err(|e| failed(msg!("writing to {SENDMAIL}: {e}")))?;
    if !output.status.success() {
        return Err(failed(Message::verbatim(format!(
            "{SENDMAIL} {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_headers_cannot_be_smuggled() {
        assert!(check_address("root").is_ok());
        assert!(check_address("sec@example.org").is_ok());
        for bad in ["", "-oQ/tmp", "a b", "a\nBcc: x", "a,b", "<a>"] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
        let text = message("root", "image x\nBcc: evil", "body\n");
        assert!(text.contains("Subject: image x\\nBcc: evil\n"), "{text}");
        assert!(!text.contains("\nBcc:"), "{text}");
        assert!(text.ends_with("\n\nbody\n"));
    }
}
