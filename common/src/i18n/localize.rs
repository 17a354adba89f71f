//! Messages translated when they are built: errors (`#[derive(Localize)]`) and `msg!`
//! messages render their own translation from the msgid template and their values, and keep
//! their English `Display` for the journal, Nagios output and logs, which stay English.

use std::fmt;

use super::{fill, language, lookup};

/// A value that can say itself in the user's language.
pub trait Localize {
    /// This value (for an error: its own message, not its causes) in the user's language;
    /// English when none is chosen.
    fn localized(&self) -> String;
}

/// A borrowed message says itself as the message does (`msg!("{label}")` with `label: &Message`).
impl<T: Localize + ?Sized> Localize for &T {
    fn localized(&self) -> String {
        (**self).localized()
    }
}

/// An error that says itself, and its cause, in the user's language
/// (`#[derive(thiserror::Error, Localize)]`).
pub trait LocalizedError: std::error::Error + Localize {
    /// The cause, as `Error::source` gives it, for [`localized_chain`].
    fn localized_cause(&self) -> Option<Cause<'_>>;
}

/// The cause of an error: one of ours, or one of a library or the OS (shown in English, an OS
/// error by its number in the user's language).
#[derive(Clone, Copy)]
pub enum Cause<'a> {
    Own(&'a dyn LocalizedError),
    Foreign(&'a (dyn std::error::Error + 'static)),
}

impl<'a> Cause<'a> {
    fn english(&self) -> String {
        match self {
            Cause::Own(e) => e.to_string(),
            Cause::Foreign(e) => e.to_string(),
        }
    }

    fn localized(&self) -> String {
        match self {
            Cause::Own(e) => e.localized(),
            Cause::Foreign(e) => localized_foreign(*e),
        }
    }

    fn next(self) -> Option<Cause<'a>> {
        match self {
            Cause::Own(e) => e.localized_cause(),
            Cause::Foreign(e) => e.source().map(Cause::Foreign),
        }
    }
}

/// An error known only as `dyn Error` (a library's, or one of ours that a library carries, such
/// as a clap value parser's [`Message`]) in the user's language where it can say itself.
pub fn localized_foreign(err: &(dyn std::error::Error + 'static)) -> String {
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        io.localized()
    } else if let Some(message) = err.downcast_ref::<Message>() {
        message.localized()
    } else {
        err.to_string()
    }
}

/// `error: cause: cause` as [`crate::cli::error_chain`] writes it, each part in the user's
/// language: a cause is added where the English text so far does not already end with it.
pub fn localized_chain(err: &dyn LocalizedError) -> String {
    if language().is_none() {
        return crate::cli::error_chain(err);
    }
    let causes = std::iter::successors(err.localized_cause(), |cause| cause.next());
    crate::cli::join_chain(
        (err.to_string(), err.localized()),
        causes.map(|cause| (cause.english(), cause.localized())),
    )
}

/// What `#[derive(Localize)]` calls for a message: English is the error's own `Display`
/// (thiserror's); otherwise the translation of `msgid` (or the msgid itself if it has none)
/// with each placeholder replaced by its value, as `(placeholder as written, value)`.
pub fn render(
    english: &dyn fmt::Display,
    msgid: &'static str,
    values: impl FnOnce() -> Vec<(&'static str, String)>,
) -> String {
    translate(msgid, values).unwrap_or_else(|| english.to_string())
}

/// The user's language's text of a message, `None` in English. Without a translation (a msgid
/// of placeholders only, say) the English template still takes the values in the user's
/// language.
fn translate(
    msgid: &'static str,
    values: impl FnOnce() -> Vec<(&'static str, String)>,
) -> Option<String> {
    language()?;
    Some(fill(lookup(msgid).unwrap_or(msgid), &values()))
}

/// A message built by [`msg!`](crate::msg): its English text and, when the user's language has
/// the msgid, its translation. `Display` is the English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    english: String,
    translated: Option<String>,
}

impl Message {
    pub fn new(
        english: String,
        msgid: &'static str,
        values: impl FnOnce() -> Vec<(&'static str, String)>,
    ) -> Message {
        Message {
            english,
            translated: translate(msgid, values),
        }
    }

    /// Text that is not a message of ours (a tool's output, a value): the same in every language.
    pub fn verbatim(text: impl Into<String>) -> Message {
        Message {
            english: text.into(),
            translated: None,
        }
    }

    /// Both texts of something that says itself (an error of ours kept as a message).
    pub fn of(value: &(impl fmt::Display + Localize + ?Sized)) -> Message {
        Message {
            english: value.to_string(),
            translated: language().map(|_| value.localized()),
        }
    }

    pub fn english(&self) -> &str {
        &self.english
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.english)
    }
}

/// A message can be an error's whole text (a clap value parser's, a tool's refusal).
impl std::error::Error for Message {}

impl Localize for Message {
    fn localized(&self) -> String {
        self.translated
            .clone()
            .unwrap_or_else(|| self.english.clone())
    }
}

/// An OS error by its number (the text Rust shows is glibc's English whatever the locale), one
/// made of a [`Message`] as the message; any other I/O error as it is.
impl Localize for std::io::Error {
    fn localized(&self) -> String {
        // An I/O error made of one of our messages (`io::Error::other(msg!(...))`).
        if let Some(message) = self.get_ref().and_then(|e| e.downcast_ref::<Message>()) {
            return message.localized();
        }
        match self.raw_os_error() {
            Some(code) => match super::os_error_translation(code) {
                Some(text) => format!("{text} (os error {code})"),
                None => self.to_string(),
            },
            None => self.to_string(),
        }
    }
}

impl Localize for std::convert::Infallible {
    fn localized(&self) -> String {
        match *self {}
    }
}

impl LocalizedError for std::convert::Infallible {
    fn localized_cause(&self) -> Option<Cause<'_>> {
        match *self {}
    }
}

/// The dispatch the derive and `msg!` expand to (autoref specialisation): a value that
/// implements [`Localize`] is rendered by it, any other by `Display`; a source field that is
/// one of ours is followed by [`LocalizedError::localized_cause`], any other by `source`.
pub mod value {
    use super::{Cause, Localize, LocalizedError};

    pub struct Wrap<'a, T: ?Sized>(pub &'a T);

    pub trait ViaLocalize {
        fn localized_text(&self) -> String;
    }
    impl<T: Localize + ?Sized> ViaLocalize for &Wrap<'_, T> {
        fn localized_text(&self) -> String {
            self.0.localized()
        }
    }

    pub trait ViaDisplay {
        fn localized_text(&self) -> String;
    }
    impl<T: std::fmt::Display + ?Sized> ViaDisplay for Wrap<'_, T> {
        fn localized_text(&self) -> String {
            self.0.to_string()
        }
    }

    /// Paths, as thiserror shows them (`Path::display`).
    pub trait ViaPath {
        fn localized_text(&self) -> String;
    }
    impl ViaPath for Wrap<'_, std::path::Path> {
        fn localized_text(&self) -> String {
            self.0.display().to_string()
        }
    }
    impl ViaPath for Wrap<'_, std::path::PathBuf> {
        fn localized_text(&self) -> String {
            self.0.display().to_string()
        }
    }

    pub trait ViaOwnCause<'a> {
        fn as_cause(&self) -> Cause<'a>;
        fn inner_cause(&self) -> Option<Cause<'a>>;
    }
    impl<'a, T: LocalizedError> ViaOwnCause<'a> for &Wrap<'a, T> {
        fn as_cause(&self) -> Cause<'a> {
            Cause::Own(self.0)
        }
        fn inner_cause(&self) -> Option<Cause<'a>> {
            self.0.localized_cause()
        }
    }

    pub trait ViaForeignCause<'a> {
        fn as_cause(&self) -> Cause<'a>;
        fn inner_cause(&self) -> Option<Cause<'a>>;
    }
    impl<'a, T: std::error::Error + 'static> ViaForeignCause<'a> for Wrap<'a, T> {
        fn as_cause(&self) -> Cause<'a> {
            Cause::Foreign(self.0)
        }
        fn inner_cause(&self) -> Option<Cause<'a>> {
            self.0.source().map(Cause::Foreign)
        }
    }
}
