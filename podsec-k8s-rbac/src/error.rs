//! The one error type of the package's commands: every message is one line that names the input.

use podsec_common::cli::{Failure, NotRoot};
use podsec_common::host::files::FileError;
use podsec_common::host::users::AccountError;
use podsec_common::i18n::Message;
use podsec_common::msg;

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    /// A bad argument, refused before any request.
    #[error("{0}")]
    Invalid(Message),
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    File(#[from] FileError),
    /// The administrator's kubeconfig is missing or unusable.
    #[error("{0}")]
    Kubeconfig(Message),
    /// The API server answered with an error (its message) or could not be reached.
    #[error("{action}: {detail}")]
    Api { action: Message, detail: Message },
    /// Anything else, already worded.
    #[error("{0}")]
    Failed(Message),
}

impl Failure for Error {}

impl Error {
    /// `action` failed with `err`: the server's own message and reason for API errors, the
    /// transport's cause chain (refused connection, TLS failure) otherwise.
    pub fn api(action: Message, err: &kube::Error) -> Error {
        Error::Api {
            action,
            detail: describe(err),
        }
    }
}

/// One line for a kube error: the server's own text (English, as it wrote it) or the
/// transport's causes (a library's English).
pub fn describe(err: &kube::Error) -> Message {
    match err {
        kube::Error::Api(status) => {
            let text = if status.message.is_empty() {
                msg!("the API server answered {}", status.code)
            } else {
                Message::verbatim(status.message.replace('\n', " "))
            };
            if status.reason.is_empty() {
                text
            } else {
                let reason = status.reason.replace('\n', " ");
                msg!("{text} ({reason})")
            }
        }
        other => {
            // kube's own wrappers ("ServiceError: ...") repeat their cause; keep the causes.
            let mut parts: Vec<String> = Vec::new();
            let mut source: Option<&dyn std::error::Error> = std::error::Error::source(other);
            if source.is_none() {
                parts.push(other.to_string());
            }
            while let Some(cause) = source {
                let text = cause.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.retain(|p| !text.contains(p.as_str()));
                    parts.push(text);
                }
                source = cause.source();
            }
            msg!(
                "cannot talk to the API server: {}",
                parts.join(": ").replace('\n', " ")
            )
        }
    }
}

/// Whether `err` is the server saying "not found".
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.is_not_found())
}

/// Whether `err` is a 409 (a conflicting write or an object that appeared meanwhile).
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}
