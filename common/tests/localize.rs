//! Translations at the source: errors and `msg!` messages render their Russian from the msgid and
//! their values, keep their English `Display`, and never translate a value that happens to equal
//! a msgid. (A process of its own: the language is chosen once per process.)

use podsec_common::cli::{NotRoot, error_chain};
use podsec_common::i18n::{Localize, Message, force_language, localized_chain};
use podsec_common::msg;

/// Errors whose templates are msgids of common's catalogue.
#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
enum TestError {
    #[error("cannot write to {dir}: {error}")]
    Write { dir: String, error: Message },
    #[error("cannot write to {dir}: {error}")]
    Nested {
        dir: String,
        #[source]
        error: NotRoot,
    },
    #[error("{path} already exists")]
    CauseApart {
        path: String,
        #[source]
        cause: std::io::Error,
    },
    #[error(transparent)]
    Transparent(#[from] NotRoot),
    #[error("{0}")]
    Text(Message),
    /// Extra format arguments, positional and named, and a constant in scope.
    #[error("{} of {LIMIT}, {kind} {name:?}", 2 + 1, kind = "files")]
    Extra { name: String },
}

const LIMIT: u32 = 10;

fn russian() {
    force_language("ru");
}

#[test]
fn an_error_renders_its_translation_from_its_fields_and_keeps_its_english_display() {
    russian();
    let err = TestError::Nested {
        dir: "/etc/x".into(),
        error: NotRoot { uid: 1000 },
    };
    assert_eq!(
        err.to_string(),
        "cannot write to /etc/x: must be run as root (effective uid 0); the current effective uid is 1000"
    );
    assert_eq!(
        err.localized(),
        "не удалось записать в /etc/x: команду должен запускать root (эффективный uid 0); текущий эффективный uid — 1000"
    );
    assert_eq!(
        TestError::Transparent(NotRoot { uid: 7 }).localized(),
        "команду должен запускать root (эффективный uid 0); текущий эффективный uid — 7"
    );
}

#[test]
fn a_message_keeps_both_texts() {
    russian();
    let name = "frobnicate";
    let message = msg!("unknown command '{name}' (see '{}' --help')", "podsec");
    assert_eq!(
        message.to_string(),
        "unknown command 'frobnicate' (see 'podsec' --help')"
    );
    // Not a msgid (the quote moved): English in both.
    assert_eq!(message.localized(), message.to_string());
    let message = msg!(
        "unknown command '{name}' (see '{package} --help')",
        package = "podsec"
    );
    assert_eq!(
        message.localized(),
        "неизвестная команда 'frobnicate' (см. 'podsec --help')"
    );
    assert_eq!(
        TestError::Text(message).localized(),
        "неизвестная команда 'frobnicate' (см. 'podsec --help')"
    );
}

#[test]
fn a_value_that_equals_a_msgid_is_not_translated() {
    russian();
    // Reverse matching translated the captured text "(see --help)" as if it were a message.
    let err = TestError::Write {
        dir: "(see --help)".into(),
        error: Message::verbatim("(see --help)"),
    };
    assert_eq!(
        err.localized(),
        "не удалось записать в (see --help): (see --help)"
    );
    let err = TestError::Write {
        dir: "(see --help)".into(),
        error: msg!("(see --help)"),
    };
    assert_eq!(
        err.localized(),
        "не удалось записать в (see --help): (см. --help)"
    );
}

#[test]
fn the_chain_adds_causes_as_the_english_chain_does_each_in_russian() {
    russian();
    let err = TestError::CauseApart {
        path: "/etc/x".into(),
        cause: std::io::Error::from_raw_os_error(13),
    };
    assert_eq!(
        error_chain(&err),
        "/etc/x already exists: Permission denied (os error 13)"
    );
    assert_eq!(
        localized_chain(&err),
        "/etc/x уже существует: Отказано в доступе (os error 13)"
    );
    // A cause already in the message is not repeated.
    let err = TestError::Nested {
        dir: "/etc/x".into(),
        error: NotRoot { uid: 1 },
    };
    assert_eq!(
        localized_chain(&err),
        "не удалось записать в /etc/x: команду должен запускать root (эффективный uid 0); текущий эффективный uid — 1"
    );
}

#[test]
fn a_borrowed_message_inside_a_message_is_translated_too() {
    russian();
    let reason = msg!("(see --help)");
    let label = &reason;
    let message = msg!("cannot write to {dir}: {error}", dir = "/x", error = label);
    assert_eq!(message.to_string(), "cannot write to /x: (see --help)");
    assert_eq!(
        message.localized(),
        "не удалось записать в /x: (см. --help)"
    );
}

#[test]
fn tr_renders_an_error_value_in_russian_too() {
    russian();
    let text = podsec_common::tr!(
        "cannot write to {dir}: {error}",
        dir = "/x",
        error = NotRoot { uid: 3 }
    );
    assert_eq!(
        text,
        "не удалось записать в /x: команду должен запускать root (эффективный uid 0); текущий эффективный uid — 3"
    );
}

#[test]
fn an_io_error_made_of_a_message_says_the_message() {
    russian();
    let err = std::io::Error::other(msg!("(see --help)"));
    assert_eq!(err.to_string(), "(see --help)");
    assert_eq!(err.localized(), "(см. --help)");
    assert_eq!(
        std::io::Error::from_raw_os_error(2).localized(),
        "Нет такого файла или каталога (os error 2)"
    );
}

#[test]
fn extra_format_arguments_and_constants_fill_their_placeholders() {
    russian();
    let err = TestError::Extra { name: "x".into() };
    assert_eq!(err.to_string(), "3 of 10, files \"x\"");
    // No translation: the template itself, filled from the same values.
    assert_eq!(err.localized(), err.to_string());
}
