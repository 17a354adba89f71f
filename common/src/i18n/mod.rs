//! Translated messages, selected by the locale as gettext selects them.
//!
//! Catalogues are gettext `.po` files embedded at compile time (`<crate>/po/ru.po`, checked
//! with `msgfmt --check` by the tests), keyed by the English message: the `msgid` is the
//! template exactly as the code writes it, with its `{name}` placeholders, and the `msgstr`
//! uses the same placeholders. Messages are translated where they are built, from the msgid and
//! the values themselves (never by matching rendered English, which would also translate user
//! data that happens to equal a msgid):
//! - [`tr!`](crate::tr) for what the code prints itself: `tr!("Installed key {path}", path = p)`;
//! - [`msg!`](crate::msg) for a message that may go either to the user or to English-only
//!   output: a [`Message`] keeps both texts (`Display` is the English);
//! - `#[derive(Localize)]` beside `thiserror::Error`: the error renders its `#[error]` template
//!   (the msgid) in the user's language from its fields, its source fields in turn
//!   ([`localized_chain`] at the entry point); `Display` stays thiserror's English;
//! - [`translate_command`] for clap definitions (Russian man pages).
//!
//! The language comes from `LC_ALL`, else `LC_MESSAGES`, else `LANG`; `C`/`POSIX` (or nothing
//! set) means English, and otherwise `LANGUAGE` (a colon-separated list) takes precedence, as in
//! GNU gettext. The nagwad journal lines and the Nagios plugin output stay English whatever the
//! locale: monitoring parses them (they use `Display`, never the localized text).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

mod localize;
pub use localize::{
    Cause, Localize, LocalizedError, Message, localized_chain, localized_foreign, render, value,
};
pub use podsec_i18n_macros::Localize;

/// One language's catalogue of one crate: the text of a `.po` file, parsed on first use.
pub struct Catalogue {
    language: &'static str,
    po: &'static str,
    parsed: OnceLock<Parsed>,
}

struct Parsed {
    exact: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// A placeholder as written, `{path}`, `{0}`, `{}` or `{0:?}`.
    Placeholder(String),
}

impl Catalogue {
    pub const fn new(language: &'static str, po: &'static str) -> Catalogue {
        Catalogue {
            language,
            po,
            parsed: OnceLock::new(),
        }
    }

    pub fn language(&self) -> &'static str {
        self.language
    }

    /// Every `msgid` with its translation (fuzzy and untranslated entries are not included).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parsed()
            .exact
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, msgid: &str) -> Option<&str> {
        self.parsed().exact.get(msgid).map(String::as_str)
    }

    fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(|| Parsed {
            exact: parse_po(self.po),
        })
    }
}

/// The catalogue of `common` itself: the CLI layer's messages (usage errors, refusals).
static COMMON: Catalogue = Catalogue::new("ru", include_str!("../../po/ru.po"));
static PACKAGE: OnceLock<&'static Catalogue> = OnceLock::new();
static LANGUAGE: OnceLock<Option<String>> = OnceLock::new();

/// Called once by a package binary's `main` with its own catalogue; `common`'s is always used.
pub fn install(catalogue: &'static Catalogue) {
    let _ = PACKAGE.set(catalogue);
}

/// Makes `language` the language of this process whatever the environment says (for
/// rendering the Russian man pages); false if the language was already chosen.
pub fn force_language(language: &str) -> bool {
    LANGUAGE.set(Some(language.to_string())).is_ok()
}

/// The language messages are translated into, if not English, from the environment.
pub fn language() -> Option<&'static str> {
    LANGUAGE
        .get_or_init(|| language_from(|name| std::env::var(name).ok(), &available_languages()))
        .as_deref()
}

fn available_languages() -> Vec<&'static str> {
    let mut languages = vec![COMMON.language];
    if let Some(catalogue) = PACKAGE.get()
        && !languages.contains(&catalogue.language)
    {
        languages.push(catalogue.language);
    }
    languages
}

/// gettext's choice: the locale of messages (`LC_ALL` > `LC_MESSAGES` > `LANG`); none or
/// `C`/`POSIX` is English; otherwise the first entry of `LANGUAGE` (or the locale itself) whose
/// language has a catalogue, English (`en`) ending the search.
fn language_from(var: impl Fn(&str) -> Option<String>, available: &[&str]) -> Option<String> {
    let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|name| var(name).filter(|v| !v.is_empty()))?;
    let base = language_of(&locale);
    if base == "C" || base == "POSIX" {
        return None;
    }
    let list = var("LANGUAGE")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| locale.clone());
    for entry in list.split(':').filter(|e| !e.is_empty()) {
        let language = language_of(entry);
        if language == "en" || language == "C" {
            return None;
        }
        if available.contains(&language) {
            return Some(language.to_string());
        }
    }
    None
}

/// `ru_RU.UTF-8@euro` -> `ru`.
fn language_of(locale: &str) -> &str {
    locale.split(['_', '.', '@']).next().unwrap_or(locale)
}

fn catalogues() -> impl Iterator<Item = &'static Catalogue> {
    let language = language();
    PACKAGE
        .get()
        .copied()
        .into_iter()
        .chain(std::iter::once(&COMMON))
        .filter(move |c| Some(c.language) == language)
}

/// The translation of an exact msgid in the current language, if there is one.
pub fn lookup(msgid: &str) -> Option<&'static str> {
    language()?;
    catalogues().find_map(|c| c.get(msgid))
}

/// `msgid` translated when the current language has it, as it is otherwise.
pub fn gettext(msgid: &'static str) -> &'static str {
    lookup(msgid).unwrap_or(msgid)
}

/// `tr!("English {name}", name = value)`: the message in the user's language. English is
/// rendered by `format!` (so the placeholders are checked at compile time), a translation by
/// [`fill`], each value that says itself ([`Localize`]: an error of ours, a
/// [`Message`]) in the user's language too. The msgid is the literal exactly as written.
#[macro_export]
macro_rules! tr {
    ($template:literal) => {
        $crate::i18n::gettext($template)
    };
    ($template:literal, $($name:ident = $value:expr),+ $(,)?) => {
        match $crate::i18n::lookup($template) {
            Some(translated) => $crate::i18n::fill(
                translated,
                &[$((::std::concat!("{", ::std::stringify!($name), "}"), {
                    #[allow(unused_imports)]
                    use $crate::i18n::value::{ViaDisplay as _, ViaLocalize as _};
                    (&&$crate::i18n::value::Wrap(&$value)).localized_text()
                })),+],
            ),
            None => ::std::format!($template, $($name = $value),+),
        }
    };
}

fn split_template(template: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            literal.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if tail.starts_with('{') {
            match tail.find('}') {
                Some(end) => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Placeholder(tail[..=end].to_string()));
                    rest = &tail[end + 1..];
                }
                None => {
                    literal.push_str(tail);
                    rest = "";
                }
            }
        } else {
            literal.push('}');
            rest = &tail[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    pieces
}

/// Fills a translated template: a placeholder takes the value of the same placeholder of the
/// msgid, as written (`{path}`, `{0:?}`; the k-th `{}` the k-th `{}`), a value given once
/// serving every use of its placeholder (`tr!`'s named arguments); `{{` and `}}` are braces.
pub fn fill(translation: &str, values: &[(&str, String)]) -> String {
    let mut used = vec![false; values.len()];
    split_template(translation)
        .into_iter()
        .map(|piece| match piece {
            Piece::Literal(l) => l,
            Piece::Placeholder(p) => {
                let same = |(_, (name, _)): &(usize, &(&str, String))| *name == p;
                let unused = values.iter().enumerate().find(|e| !used[e.0] && same(e));
                match unused.or_else(|| values.iter().enumerate().find(same)) {
                    Some((i, (_, value))) => {
                        used[i] = true;
                        value.clone()
                    }
                    None => p,
                }
            }
        })
        .collect()
}

/// The placeholders of a template as written (`{path}`, `{}`, `{0:?}`), sorted: a msgstr must
/// have the same ones as its msgid.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut found: Vec<String> = split_template(template)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(p) => Some(p),
            Piece::Literal(_) => None,
        })
        .collect();
    found.sort();
    found
}

/// glibc's texts of the OS errors people meet here, in English (as Rust's `io::Error` shows
/// them: it never calls setlocale) and in Russian (glibc's Russian catalogue).
const OS_ERRORS: &[(i32, &str, &str)] = &[
    (1, "Operation not permitted", "Операция не позволена"),
    (
        2,
        "No such file or directory",
        "Нет такого файла или каталога",
    ),
    (3, "No such process", "Нет такого процесса"),
    (4, "Interrupted system call", "Прерван системный вызов"),
    (5, "Input/output error", "Ошибка ввода/вывода"),
    (
        7,
        "Argument list too long",
        "Слишком длинный список аргументов",
    ),
    (8, "Exec format error", "Ошибка формата выполняемого файла"),
    (
        11,
        "Resource temporarily unavailable",
        "Ресурс временно недоступен",
    ),
    (12, "Cannot allocate memory", "Невозможно выделить память"),
    (13, "Permission denied", "Отказано в доступе"),
    (
        16,
        "Device or resource busy",
        "Устройство или ресурс занято",
    ),
    (17, "File exists", "Файл существует"),
    (
        18,
        "Invalid cross-device link",
        "Неверная ссылка между устройствами",
    ),
    (20, "Not a directory", "Это не каталог"),
    (21, "Is a directory", "Это каталог"),
    (22, "Invalid argument", "Недопустимый аргумент"),
    (26, "Text file busy", "Текстовый файл занят"),
    (
        28,
        "No space left on device",
        "На устройстве не осталось свободного места",
    ),
    (
        30,
        "Read-only file system",
        "Файловая система доступна только для чтения",
    ),
    (32, "Broken pipe", "Обрыв канала"),
    (36, "File name too long", "Слишком длинное имя файла"),
    (39, "Directory not empty", "Каталог не пуст"),
    (
        40,
        "Too many levels of symbolic links",
        "Слишком много уровней символьных ссылок",
    ),
    (98, "Address already in use", "Адрес уже используется"),
    (
        99,
        "Cannot assign requested address",
        "Невозможно назначить запрошенный адрес",
    ),
    (101, "Network is unreachable", "Сеть недоступна"),
    (
        104,
        "Connection reset by peer",
        "Соединение сброшено другой стороной",
    ),
    (
        110,
        "Connection timed out",
        "Время ожидания соединения истекло",
    ),
    (111, "Connection refused", "В соединении отказано"),
    (113, "No route to host", "Нет маршрута до узла"),
];

/// The user's language's text of an OS error, by number: Rust shows glibc's English text
/// whatever the locale.
pub(crate) fn os_error_translation(code: i32) -> Option<&'static str> {
    if language()? != "ru" {
        return None;
    }
    OS_ERRORS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, _, russian)| *russian)
}

/// Parses the entries of a `.po` file (polib): translated singular entries without a context;
/// the header, fuzzy entries and untranslated ones are left out. A catalogue that does not parse
/// (the tests run `msgfmt --check` on every one) gives no translations, so English.
pub fn parse_po(text: &str) -> HashMap<String, String> {
    let options = polib::po_file::POParseOptions {
        translated_only: true,
        ..Default::default()
    };
    let Ok(catalog) = polib::po_file::parse_from_reader_with_option(text.as_bytes(), &options)
    else {
        return HashMap::new();
    };
    catalog
        .messages()
        .filter(|m| {
            m.is_singular()
                && m.is_translated()
                && !m.flags().is_fuzzy()
                && m.msgctxt().is_none()
                && !m.msgid().is_empty()
        })
        .filter_map(|m| Some((m.msgid().to_string(), m.msgstr().ok()?.to_string())))
        .collect()
}

/// A string as a `.po` file quotes it (one line per `\n` of the text).
pub fn po_string(text: &str) -> String {
    let escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\t', "\\t")
    };
    if !text.contains('\n') {
        return format!("\"{}\"", escape(text));
    }
    let mut out = String::from("\"\"");
    for line in text.split_inclusive('\n') {
        out.push_str(&format!("\n\"{}\"", escape(line).replace('\n', "\\n")));
    }
    out
}

/// A clap definition with its texts (about, help of every argument, after-help) translated;
/// also returns the English texts that have no translation. Used for the Russian man pages.
pub fn translate_command(command: clap::Command) -> (clap::Command, Vec<String>) {
    let mut missing = Vec::new();
    let command = translate_command_inner(command, &mut missing);
    (command, missing)
}

fn translated(
    text: Option<&clap::builder::StyledStr>,
    missing: &mut Vec<String>,
) -> Option<String> {
    let english = text?.to_string();
    match lookup(&english) {
        Some(t) => Some(t.to_string()),
        None => {
            if !missing.contains(&english) {
                missing.push(english.clone());
            }
            Some(english)
        }
    }
}

fn translate_command_inner(mut command: clap::Command, missing: &mut Vec<String>) -> clap::Command {
    if let Some(about) = translated(command.get_about(), missing) {
        command = command.about(about);
    }
    if let Some(long_about) = translated(command.get_long_about(), missing) {
        command = command.long_about(long_about);
    }
    if let Some(after) = translated(command.get_after_help(), missing) {
        command = command.after_help(after);
    }
    if let Some(after) = translated(command.get_after_long_help(), missing) {
        command = command.after_long_help(after);
    }
    if let Some(before) = translated(command.get_before_help(), missing) {
        command = command.before_help(before);
    }
    // clap adds --help and --version when it builds; build first so they are translated too.
    // (`mut_args` keeps the order of the arguments: the built command's key map indexes them.)
    command.build();
    command = command.mut_args(|arg| {
        if arg.is_hide_set() {
            return arg;
        }
        let help = translated(arg.get_help(), missing);
        let long_help = translated(arg.get_long_help(), missing);
        let arg = match help {
            Some(h) => arg.help(h),
            None => arg,
        };
        match long_help {
            Some(h) => arg.long_help(h),
            None => arg,
        }
    });
    command.mut_subcommands(|sub| translate_command_inner(sub, missing))
}

/// A clap definition as the user reads it: under a translated language its texts
/// ([`translate_command`]) and the words clap writes itself in English only (the usage and
/// section headings, `[OPTIONS]`, `[default: ...]`, `[possible values: ...]`) are in that
/// language; under English it is returned as it is. The commands parse with it, so `--help`,
/// `-h` and the usage errors speak the language of the other messages; the man pages are
/// rendered from the plain definition ([`translate_command`] and [`translate_man_page`]).
pub fn localize_command(command: clap::Command) -> clap::Command {
    if language().is_none() {
        return command;
    }
    let (command, _) = translate_command(command);
    localize_clap_words(command)
}

fn localize_clap_words(mut command: clap::Command) -> clap::Command {
    command.build();
    command = command
        .mut_args(|arg| {
            if arg.is_hide_set() {
                arg
            } else {
                localize_value_notes(arg)
            }
        })
        .mut_subcommands(localize_clap_words);
    let usage_heading = crate::tr!("Usage:");
    let usage = localized_usage(&mut command, usage_heading);
    let template = help_template(&command, usage_heading);
    command.override_usage(usage).help_template(template)
}

/// clap's `[default: ...]` and `[possible values: ...]` after an argument's help, translated:
/// clap's own notes are hidden and the same notes appended to the help text.
fn localize_value_notes(arg: clap::Arg) -> clap::Arg {
    if !arg.get_num_args().is_some_and(|n| n.takes_values()) {
        return arg;
    }
    let mut notes = Vec::new();
    let mut hide_default = false;
    let mut hide_possible = false;
    if !arg.is_hide_default_value_set() && !arg.get_default_values().is_empty() {
        let values: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| quoted_value(&v.to_string_lossy()))
            .collect();
        notes.push(crate::tr!("[default: {values}]", values = values.join(" ")));
        hide_default = true;
    }
    let possible = arg.get_possible_values();
    // Possible values with help of their own are a list in the long help, left to clap.
    if !arg.is_hide_possible_values_set()
        && !possible.is_empty()
        && possible.iter().all(|p| p.get_help().is_none())
    {
        let values: Vec<String> = possible
            .iter()
            .filter(|p| !p.is_hide_set())
            .map(|p| quoted_value(p.get_name()))
            .collect();
        notes.push(crate::tr!(
            "[possible values: {values}]",
            values = values.join(", ")
        ));
        hide_possible = true;
    }
    if notes.is_empty() {
        return arg;
    }
    let notes = notes.join(" ");
    let help = arg.get_help().map(|h| h.to_string());
    let long_help = arg.get_long_help().map(|h| h.to_string());
    let mut arg = arg
        .hide_default_value(hide_default)
        .hide_possible_values(hide_possible);
    arg = arg.help(match help {
        Some(help) if !help.is_empty() => format!("{help} {notes}"),
        _ => notes.clone(),
    });
    if let Some(long_help) = long_help {
        arg = arg.long_help(format!("{long_help}\n\n{notes}"));
    }
    arg
}

/// A value as clap shows it in its notes: quoted when it has blanks.
fn quoted_value(value: &str) -> String {
    if value.contains(char::is_whitespace) {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

/// The usage line without clap's English `Usage: ` and with `[OPTIONS]` translated; the lines
/// after the first aligned under the translated heading.
fn localized_usage(command: &mut clap::Command, heading: &str) -> String {
    let rendered = command.render_usage().to_string();
    let usage = rendered.strip_prefix("Usage: ").unwrap_or(&rendered);
    let indent = " ".repeat(heading.chars().count() + 1);
    usage
        .replace("[OPTIONS]", crate::tr!("[OPTIONS]"))
        .replace("\n       ", &format!("\n{indent}"))
}

/// clap's default help template with the headings in the current language (clap writes
/// `Usage:`, `Commands:`, `Arguments:` and `Options:` itself, in English only).
fn help_template(command: &clap::Command, usage_heading: &str) -> String {
    let styles = command.get_styles();
    let styled = |style: &clap::builder::styling::Style, text: &str| {
        format!("{}{text}{}", style.render(), style.render_reset())
    };
    let header = styles.get_header();
    let mut sections = Vec::new();
    if command.has_subcommands() && command.get_subcommands().any(|s| !s.is_hide_set()) {
        sections.push(format!(
            "{}\n{{subcommands}}",
            styled(header, crate::tr!("Commands:"))
        ));
    }
    if command.get_positionals().any(|a| !a.is_hide_set()) {
        sections.push(format!(
            "{}\n{{positionals}}",
            styled(header, crate::tr!("Arguments:"))
        ));
    }
    if command
        .get_arguments()
        .any(|a| !a.is_positional() && !a.is_hide_set())
    {
        sections.push(format!(
            "{}\n{{options}}",
            styled(header, crate::tr!("Options:"))
        ));
    }
    let mut template = format!(
        "{{before-help}}{{about-with-newline}}\n{} {{usage}}",
        styled(styles.get_usage(), usage_heading)
    );
    if !sections.is_empty() {
        template.push_str("\n\n");
        template.push_str(&sections.join("\n\n"));
    }
    template.push_str("{after-help}");
    template
}

/// The section headings and fixed words of a clap_mangen page, in the current language.
pub fn translate_man_page(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    for line in roff.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let translated = match body.strip_prefix(".SH ") {
            Some(heading) => {
                let key = heading.trim_matches('"');
                format!(".SH {}", man_heading(key))
            }
            None => body
                .replace("[default: ", gettext("[default: "))
                .replace("Possible values:", gettext("Possible values:")),
        };
        out.push_str(&translated);
        out.push_str(newline);
    }
    out
}

fn man_heading(heading: &str) -> Cow<'static, str> {
    let msgid = match heading {
        "NAME" => "NAME",
        "SYNOPSIS" => "SYNOPSIS",
        "DESCRIPTION" => "DESCRIPTION",
        "OPTIONS" => "OPTIONS",
        "SUBCOMMANDS" => "SUBCOMMANDS",
        "EXTRA" => "EXTRA",
        "VERSION" => "VERSION",
        "AUTHORS" => "AUTHORS",
        other => return Cow::Owned(other.to_string()),
    };
    Cow::Borrowed(gettext(msgid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_language_is_chosen_as_gettext_chooses_it() {
        let ru = ["ru"];
        assert_eq!(language_from(env(&[]), &ru), None);
        assert_eq!(
            language_from(env(&[("LANG", "ru_RU.UTF-8")]), &ru).as_deref(),
            Some("ru")
        );
        assert_eq!(
            language_from(env(&[("LANG", "ru_RU.UTF-8"), ("LC_ALL", "C")]), &ru),
            None
        );
        assert_eq!(
            language_from(env(&[("LANG", "C.UTF-8"), ("LC_MESSAGES", "ru_RU")]), &ru).as_deref(),
            Some("ru")
        );
        // LANGUAGE wins over the locale, but not over C.
        assert_eq!(
            language_from(env(&[("LANG", "de_DE.UTF-8"), ("LANGUAGE", "uk:ru")]), &ru).as_deref(),
            Some("ru")
        );
        assert_eq!(
            language_from(env(&[("LANG", "ru_RU.UTF-8"), ("LANGUAGE", "en:ru")]), &ru),
            None
        );
        assert_eq!(
            language_from(env(&[("LANG", "C"), ("LANGUAGE", "ru")]), &ru),
            None
        );
        assert_eq!(language_from(env(&[("LANG", "de_DE.UTF-8")]), &ru), None);
    }

    #[test]
    fn po_entries_are_parsed_with_continuations_and_escapes() {
        let po = r#"
# header
msgid ""
msgstr "Content-Type: text/plain; charset=UTF-8\n"

#: src/x.rs
msgid "cannot read {path}: "
"{source}"
msgstr "не удалось прочитать {path}: {source}"

#, fuzzy
msgid "fuzzy one"
msgstr "нечёткий"

msgid "untranslated"
msgstr ""

msgid "a \"quoted\"\tline\n"
msgstr "строка \"в кавычках\"\t\n"
"#;
        let entries = parse_po(po);
        assert_eq!(
            entries
                .get("cannot read {path}: {source}")
                .map(String::as_str),
            Some("не удалось прочитать {path}: {source}")
        );
        assert!(!entries.contains_key("fuzzy one"));
        assert!(!entries.contains_key("untranslated"));
        assert!(!entries.contains_key(""));
        assert_eq!(
            entries.get("a \"quoted\"\tline\n").map(String::as_str),
            Some("строка \"в кавычках\"\t\n")
        );
    }

    #[test]
    fn a_translation_is_filled_by_placeholder_as_written() {
        let values = [
            ("{path}", "/etc/x".to_string()),
            ("{source}", "bad".to_string()),
        ];
        assert_eq!(
            fill("{source}: при чтении {path}", &values),
            "bad: при чтении /etc/x"
        );
        let positional = [("{}", "a".to_string()), ("{}", "b".to_string())];
        assert_eq!(fill("{} и {}", &positional), "a и b");
        assert_eq!(fill("{{x}} {missing}", &positional), "{x} {missing}");
    }

    #[test]
    fn substitution_fills_names_and_keeps_braces() {
        assert_eq!(
            fill("{{x}} {name} и {other} {name}", &[("{name}", "v".into())]),
            "{x} v и {other} v"
        );
        assert_eq!(placeholders("a {b} {} {c:?}"), vec!["{b}", "{c:?}", "{}"]);
    }

    /// The localised definition parses as the plain one (the arguments keep their order, a
    /// hidden one included: a built command finds them by index) and carries clap's notes in
    /// its help texts.
    #[test]
    fn a_localized_command_parses_as_the_plain_one() {
        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser, Debug)]
        #[command(name = "podsec-demo", version, disable_help_flag = true)]
        struct Demo {
            /// The user
            user: String,
            /// Report as JSON
            #[arg(long)]
            json: bool,
            /// Mode
            #[arg(long, default_value = "fast", value_parser = ["fast", "slow"])]
            mode: String,
            /// Print help
            #[arg(long, action = clap::ArgAction::Help)]
            help: Option<bool>,
            /// A range
            #[arg(short = 'h')]
            high: Option<String>,
            /// Stray words (hidden, as the plugins' tokens of old unit files)
            #[arg(hide = true)]
            stray: Vec<String>,
        }
        let (command, _) = translate_command(Demo::command());
        let mut command = localize_clap_words(command);
        let mut matches = command
            .try_get_matches_from_mut(["podsec-demo", "alice", "-h", "5"])
            .unwrap();
        let demo = Demo::from_arg_matches_mut(&mut matches).unwrap();
        assert_eq!(demo.user, "alice");
        assert!(!demo.json);
        assert_eq!(demo.high.as_deref(), Some("5"));
        assert_eq!(demo.mode, "fast");
        assert!(demo.stray.is_empty());
        let err = command
            .try_get_matches_from_mut(["podsec-demo", "--help"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = command.render_help().to_string();
        assert!(
            help.contains("Mode [default: fast] [possible values: fast, slow]"),
            "{help}"
        );
        assert!(
            help.contains("Usage: podsec-demo [OPTIONS] <USER>\n\nArguments:\n  <USER>"),
            "{help}"
        );
        assert!(help.contains("\n\nOptions:\n"), "{help}");
    }

    #[test]
    fn the_common_catalogue_is_consistent() {
        for (id, text) in COMMON.entries() {
            assert_eq!(placeholders(id), placeholders(text), "msgid {id:?}");
        }
        assert!(COMMON.get("NAME").is_some());
    }
}
