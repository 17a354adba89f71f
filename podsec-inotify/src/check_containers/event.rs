//! What one change in a container means: its severity (upstream's rule), its inotify event
//! names (as inotifywait prints them) and the log line, with every byte that comes from the
//! container (file names, and container names from the user's metadata) rendered as inert text.

use nix::sys::inotify::AddWatchFlags;
use podsec_common::log::Level;

/// The events reported: a file created, written, deleted or moved out of or into a directory.
pub const CONTENT_EVENTS: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO);

/// Top-level directories of a container that are not watched (upstream's exclusions: they
/// change all the time in any running container).
pub const EXCLUDED_TOP_DIRS: [&str; 4] = ["var", "proc", "tmp", "run"];

/// The names inotifywait prints for an event mask (`CREATE,ISDIR`).
pub fn event_names(mask: AddWatchFlags) -> String {
    const NAMES: [(AddWatchFlags, &str); 6] = [
        (AddWatchFlags::IN_CREATE, "CREATE"),
        (AddWatchFlags::IN_MODIFY, "MODIFY"),
        (AddWatchFlags::IN_DELETE, "DELETE"),
        (AddWatchFlags::IN_MOVED_FROM, "MOVED_FROM"),
        (AddWatchFlags::IN_MOVED_TO, "MOVED_TO"),
        (AddWatchFlags::IN_ISDIR, "ISDIR"),
    ];
    NAMES
        .iter()
        .filter(|(flag, _)| mask.contains(*flag))
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

/// Where in the container a path is, and how grave a change there is: home directories and
/// /etc are Warning, everything else (binaries, libraries, the root) Critical.
pub fn classify(path: &[u8]) -> (Level, &'static str) {
    let under =
        |dir: &[u8]| path == dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'));
    if under(b"/home") || under(b"/root") {
        (Level::Warning, "in home directory")
    } else if under(b"/etc") {
        (Level::Warning, "in configuration directory")
    } else {
        (Level::Critical, "in system directory")
    }
}

/// Bytes as text that cannot be mistaken for anything else: printable UTF-8 stays as it is
/// (quotes, `$(...)`, spaces: they are only characters here); control characters, a backslash
/// and bytes that are not UTF-8 become `\n`, `\\`, `\x1b`. A name cannot forge a second log line.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buffer = [0u8; 4];
                    for b in c.encode_utf8(&mut buffer).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The container an event belongs to, as the log line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLabel {
    pub name: String,
    pub id: String,
    pub user: String,
}

/// The log line of one change: `An event MODIFY occurred in the container web (ID …, user
/// root) in configuration directory on the file /etc/passwd`, and its level.
pub fn describe(container: &ContainerLabel, mask: AddWatchFlags, path: &[u8]) -> (Level, String) {
    let (level, place) = classify(path);
    let text = format!(
        "An event {} occurred in the container {} (ID {}, user {}) {place} on the file {}",
        event_names(mask),
        escape(container.name.as_bytes()),
        escape(container.id.as_bytes()),
        escape(container.user.as_bytes()),
        escape(path)
    );
    (level, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_classes_by_directory_not_by_substring() {
        assert_eq!(
            classify(b"/etc/passwd"),
            (Level::Warning, "in configuration directory")
        );
        assert_eq!(
            classify(b"/etc"),
            (Level::Warning, "in configuration directory")
        );
        assert_eq!(classify(b"/root/.profile").0, Level::Warning);
        assert_eq!(
            classify(b"/home/u/x"),
            (Level::Warning, "in home directory")
        );
        assert_eq!(
            classify(b"/usr/bin/ls"),
            (Level::Critical, "in system directory")
        );
        assert_eq!(classify(b"/etcetera/x").0, Level::Critical);
        assert_eq!(classify(b"/usr/etc/x").0, Level::Critical);
        assert_eq!(classify(b"/homework").0, Level::Critical);
        assert_eq!(classify(b"/bin").0, Level::Critical);
    }

    #[test]
    fn event_names_as_inotifywait_prints_them() {
        assert_eq!(event_names(AddWatchFlags::IN_MODIFY), "MODIFY");
        assert_eq!(
            event_names(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_ISDIR),
            "CREATE,ISDIR"
        );
        assert_eq!(event_names(AddWatchFlags::IN_MOVED_FROM), "MOVED_FROM");
        assert_eq!(event_names(AddWatchFlags::IN_MOVED_TO), "MOVED_TO");
        assert_eq!(event_names(AddWatchFlags::IN_DELETE), "DELETE");
    }

    #[test]
    fn hostile_names_stay_inert_text_on_one_line() {
        assert_eq!(escape(b"a'$(touch pwned)'b"), "a'$(touch pwned)'b");
        assert_eq!(escape(b"x\nCritical: forged"), "x\\nCritical: forged");
        assert_eq!(escape(b"\x1b[31m\\"), "\\x1b[31m\\\\");
        assert_eq!(escape(b"caf\xc3\xa9 \xff"), "caf\u{e9} \\xff");
        let label = ContainerLabel {
            name: "web".into(),
            id: "bb59".into(),
            user: "alice".into(),
        };
        let (level, text) = describe(&label, AddWatchFlags::IN_CREATE, b"/etc/a'$(touch pwned)'b");
        assert_eq!(level, Level::Warning);
        assert_eq!(
            text,
            "An event CREATE occurred in the container web (ID bb59, user alice) in configuration directory on the file /etc/a'$(touch pwned)'b"
        );
        let (level, text) = describe(&label, AddWatchFlags::IN_MODIFY, b"/usr/lib/x\ny");
        assert_eq!(level, Level::Critical);
        assert!(!text.contains('\n'), "{text}");
    }
}
