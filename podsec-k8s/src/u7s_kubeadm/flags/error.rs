//! What the parser and the value checks refuse, each error naming the flag.

use std::fmt;

use podsec_common::i18n::{Localize, Message};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
pub enum FlagError {
    #[error("unknown flag {flag} for kubeadm {command} (see kubeadm {command} --help)")]
    Unknown { command: &'static str, flag: String },
    #[error("flag --{flag} belongs to kubeadm {belongs}, not to kubeadm {command}")]
    WrongCommand {
        command: &'static str,
        flag: &'static str,
        belongs: &'static str,
    },
    #[error("flag --{flag} needs a value")]
    MissingValue { flag: &'static str },
    #[error("flag --{flag} takes no value other than true or false, got '{value}'")]
    BoolValue { flag: &'static str, value: String },
    #[error("flag --{flag} is not supported: {reason}")]
    Rejected { flag: &'static str, reason: Msgid },
    #[error("flag --{flag} given twice")]
    Twice { flag: &'static str },
    #[error("invalid value '{value}' of --{flag}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: Message,
    },
    #[error("kubeadm {command} takes no argument '{argument}'")]
    ExtraArgument {
        command: &'static str,
        argument: String,
    },
    #[error("kubeadm join needs the API server endpoint (HOST:PORT) or --discovery-file")]
    NoDiscovery,
    #[error(
        "kubeadm join needs --discovery-token-ca-cert-hash (or, unsafely, --discovery-token-unsafe-skip-ca-verification) with token discovery"
    )]
    NoCaHash,
    #[error(
        "kubeadm join needs --token or --discovery-token (and a TLS bootstrap token) with token discovery"
    )]
    NoToken,
    #[error("--discovery-file and the API server endpoint exclude each other")]
    FileAndEndpoint,
    #[error("flag --{flag} needs --control-plane")]
    NeedsControlPlane { flag: &'static str },
}

pub(super) fn invalid(
    flag: &'static str,
    value: &str,
    reason: impl fmt::Display + Localize,
) -> FlagError {
    FlagError::Invalid {
        flag,
        value: value.to_string(),
        reason: Message::of(&reason),
    }
}

/// A fixed reason of the flag table: a msgid, shown translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msgid(pub &'static str);

impl fmt::Display for Msgid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Localize for Msgid {
    fn localized(&self) -> String {
        podsec_common::i18n::gettext(self.0).to_string()
    }
}
