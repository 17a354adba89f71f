//! Russian messages and man pages (issue 7, acceptance 4): the catalogues are valid gettext
//! files whose translations keep every placeholder; every message of the shared CLI layer and
//! of every package (podsec, podsec-k8s, podsec-k8s-rbac, podsec-inotify) has a translation
//! (found in the sources: the `#[error("...")]` templates, `tr!("...")` and `msg!("...")`);
//! commands run under a Russian locale print Russian; C and English locales stay English;
//! monitoring output (plugin status lines, journal lines, forbidden.log) stays English.
//! (`man -L ru` of the installed packages: tests/tests/packaging.rs.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use podsec_common::i18n::{parse_po, placeholders};
use podsec_tests::rpm::project_root;
use podsec_tests::sandbox::{Options, Sandbox, target_dir};

/// The crates whose messages are all translated, and their catalogues.
const TRANSLATED: &[&str] = &[
    "common",
    "podsec",
    "podsec-k8s",
    "podsec-k8s-rbac",
    "podsec-inotify",
];

fn catalogue(krate: &str) -> BTreeMap<String, String> {
    let path = project_root().join(krate).join("po/ru.po");
    parse_po(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .into_iter()
        .collect()
}

#[test]
fn catalogues_are_valid_gettext_files_that_keep_every_placeholder() {
    for krate in TRANSLATED {
        let path = project_root().join(krate).join("po/ru.po");
        let out = Command::new("msgfmt")
            .args(["--check", "-o", "/dev/null"])
            .arg(&path)
            .output()
            .expect("msgfmt (Debian package gettext)");
        assert!(
            out.status.success(),
            "msgfmt --check {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let entries = catalogue(krate);
        assert!(entries.len() > 20, "{krate}: {} entries", entries.len());
        for (id, text) in &entries {
            assert_eq!(
                placeholders(id),
                placeholders(text),
                "{krate}: msgid {id:?}"
            );
            assert!(
                text.chars()
                    .any(|c| ('а'..='я').contains(&c.to_ascii_lowercase())
                        || ('А'..='Я').contains(&c))
                    || id == text,
                "{krate}: {id:?} is not translated into Russian: {text:?}"
            );
        }
    }
}

/// A message found in the sources: the msgid and, for `tr!`, the names of its arguments.
#[derive(Debug)]
struct Found {
    file: PathBuf,
    msgid: String,
    tr_args: Option<Vec<String>>,
}

#[test]
fn every_message_of_the_translated_packages_has_a_translation() {
    let common = catalogue("common");
    let mut missing = Vec::new();
    for krate in TRANSLATED {
        let own = catalogue(krate);
        for found in messages_in(&project_root().join(krate).join("src")) {
            // A template with no words outside its placeholders ("{path}: {error}") has
            // nothing to translate: its values say themselves.
            let mut words = found.msgid.clone();
            for placeholder in placeholders(&found.msgid) {
                words = words.replace(&placeholder, "");
            }
            if !words.chars().any(char::is_alphabetic) {
                continue;
            }
            if !own.contains_key(&found.msgid) && !common.contains_key(&found.msgid) {
                missing.push(format!(
                    "#: {}\nmsgid {}\nmsgstr \"\"\n",
                    found.file.display(),
                    podsec_common::i18n::po_string(&found.msgid)
                ));
            }
            // tr! fills named placeholders from its arguments only (no implicit captures).
            if let Some(args) = &found.tr_args {
                for placeholder in placeholders(&found.msgid) {
                    let name = placeholder.trim_matches(['{', '}']);
                    assert!(
                        args.iter().any(|a| a == name),
                        "{}: tr!({:?}) has no argument {name}",
                        found.file.display(),
                        found.msgid
                    );
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "messages without a Russian translation (add them to <crate>/po/ru.po):\n{}",
        missing.join("\n")
    );
}

/// Every error type of the translated crates says itself in the user's language: a type that
/// derives `thiserror::Error` without `Localize` would be shown in English wherever it is a
/// field or a cause of another error (the derive falls back to `Display` for it).
#[test]
fn every_error_type_derives_localize() {
    let mut missing = Vec::new();
    let mut derives = 0;
    for krate in TRANSLATED {
        for (path, text) in rust_files(&project_root().join(krate).join("src")) {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.starts_with("#[derive(") && line.contains("thiserror::Error") {
                    derives += 1;
                    if !line.contains("Localize") {
                        missing.push(format!("{}:{}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(derives > 50, "only {derives} error types found");
    assert!(
        missing.is_empty(),
        "thiserror::Error without Localize: {missing:?}"
    );
}

/// `#[error("...")]`, `tr!("...")` and `msg!("...")` literals of every .rs file below `dir`.
fn messages_in(dir: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    for (path, text) in rust_files(dir) {
        for (msgid, tr_args) in scan(&text) {
            found.push(Found {
                file: path.clone(),
                msgid,
                tr_args,
            });
        }
    }
    assert!(!found.is_empty(), "no messages found in {}", dir.display());
    found
}

/// Every .rs file below `dir`, with its text.
fn rust_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    files
}

/// A small Rust lexer: skips comments and string contents, and at `#[error(`, `tr!(` and
/// `msg!(` reads the string literal that follows (and, for `tr!`, its argument names).
fn scan(source: &str) -> Vec<(String, Option<Vec<String>>)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => i = skip_string(bytes, i).1,
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !is_ident(bytes[i - 1])) =>
            {
                i = skip_raw_string(bytes, i);
            }
            b'\'' => {
                // A char literal ('x', '\n', '\'') or a lifetime.
                if bytes.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if bytes.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            _ => {
                let rest = &source[i..];
                let boundary = i == 0 || !is_ident(bytes[i - 1]);
                let marker = ["#[error(", "tr!(", "msg!("]
                    .into_iter()
                    .find(|m| boundary && rest.starts_with(m));
                if let Some(marker) = marker {
                    let mut j = i + marker.len();
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if bytes.get(j) == Some(&b'"') {
                        let (literal, end) = skip_string(bytes, j);
                        let args = (marker == "tr!(").then(|| argument_names(&source[end..]));
                        out.push((literal, args));
                        i = end;
                        continue;
                    }
                }
                i += 1;
            }
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The value of the string literal at `start` (with Rust's escapes) and the index after it.
fn skip_string(bytes: &[u8], start: usize) -> (String, usize) {
    let mut value = Vec::new();
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != b'"' {
        if bytes[i] == b'\\' {
            i += 1;
            match bytes.get(i) {
                Some(b'n') => value.push(b'\n'),
                Some(b't') => value.push(b'\t'),
                Some(b'"') => value.push(b'"'),
                Some(b'\\') => value.push(b'\\'),
                Some(b'\'') => value.push(b'\''),
                Some(b'0') => value.push(0),
                // A line continuation drops the newline and the next line's indentation.
                Some(b'\n') => {
                    while bytes.get(i + 1).is_some_and(|b| b.is_ascii_whitespace()) {
                        i += 1;
                    }
                }
                Some(b'x') => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    value.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                Some(other) => value.push(*other),
                None => {}
            }
            i += 1;
            continue;
        }
        value.push(bytes[i]);
        i += 1;
    }
    // A byte string (`b"caf\xc3\xa9 \xff"`, never a message) need not be UTF-8.
    (String::from_utf8_lossy(&value).into_owned(), i + 1)
}

fn skip_raw_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    let mut hashes = 0;
    while bytes.get(i) == Some(&b'#') {
        hashes += 1;
        i += 1;
    }
    if bytes.get(i) != Some(&b'"') {
        return start + 1;
    }
    i += 1;
    loop {
        if i >= bytes.len() {
            return i;
        }
        if bytes[i] == b'"'
            && bytes[i + 1..]
                .iter()
                .take(hashes)
                .filter(|b| **b == b'#')
                .count()
                == hashes
        {
            return i + 1 + hashes;
        }
        i += 1;
    }
}

/// The `name = value` names at the top level of a macro's remaining arguments.
fn argument_names(rest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let bytes = rest.as_bytes();
    let mut i = 0;
    let mut item_start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = skip_string(bytes, i).1;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => break,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => item_start = i + 1,
            b'=' if depth == 0 && bytes.get(i + 1) != Some(&b'=') && bytes[i - 1] != b'=' => {
                let name = rest[item_start..i].trim();
                if name.bytes().all(is_ident) && !name.is_empty() {
                    names.push(name.to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    names
}

#[test]
fn the_scanner_finds_messages_and_argument_names() {
    let found = scan(
        r##"
        // tr!("in a comment")
        #[error("cannot read {path}: {source}")]
        let s = "tr!(\"in a string\")";
        let r = r#"msg!("in a raw string")"#;
        let c = '"';
        println!("{}", tr!("a {b} and {c}", b = x(1, 2), c = "y,z"));
        Error::Failed(msg!("line \
                           continued {x}"));
        assert_eq!(escape(b"caf\xc3\xa9 \xff"), "x");
        "##,
    );
    let msgids: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        msgids,
        vec![
            "cannot read {path}: {source}",
            "a {b} and {c}",
            "line continued {x}"
        ]
    );
    assert_eq!(
        found[1].1.as_deref(),
        Some(&["b".to_string(), "c".to_string()][..])
    );
}

fn run_as(sandbox: &Sandbox, user: Option<&str>, env: &[(&str, &str)], argv: &[&str]) -> Output {
    let binary = target_dir().join(argv[0]);
    let mut command = sandbox.command(&binary).args(&argv[1..]);
    if let Some(user) = user {
        command = command.user(user);
    }
    for (k, v) in env {
        command = command.env(k, v);
    }
    command.output()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn commands_speak_russian_under_a_russian_locale() {
    let sandbox = Sandbox::start(&Options::default()).expect("sandbox");
    sandbox.sh_ok("groupadd podman_dev && useradd -m -G podman_dev maker && useradd -m alice");
    let ru = [("LANG", "ru_RU.UTF-8")];
    let cases: &[(&[&str], Option<&str>, &str, &str)] = &[
        // (command, user, Russian text, the English it replaces)
        (
            &["podsec", "create-policy"],
            None,
            "не указаны обязательные аргументы",
            "the following required arguments were not provided",
        ),
        (
            &["podsec", "create-policy", "--bogus", "192.0.2.1"],
            None,
            "неизвестный аргумент '--bogus' (см. --help)",
            "unexpected argument '--bogus' found (see --help)",
        ),
        (
            &["podsec", "create-policy", "999.1.1.1"],
            None,
            "недопустимый IP-адрес: '999.1.1.1'",
            "invalid IP address: '999.1.1.1'",
        ),
        (
            &["podsec", "create-policy", "192.0.2.1"],
            Some("alice"),
            "команду должен запускать root",
            "must be run as root",
        ),
        (
            &[
                "podsec",
                "load-sign-oci",
                "/nonexistent.tar.xz",
                "amd64",
                "me@example.com",
            ],
            Some("alice"),
            "вызывающий пользователь не входит в группу podman_dev",
            "the caller is not a member of group podman_dev",
        ),
        (
            &[
                "podsec-k8s-rbac",
                "bindrole",
                "alice",
                "badtype",
                "view",
                "rb",
            ],
            None,
            "недопустимый тип роли 'badtype'",
            "invalid role type 'badtype'",
        ),
        (
            &["podsec-k8s-rbac", "get-userroles", "Bad!"],
            None,
            "недопустимое имя пользователя 'Bad!'",
            "invalid user name 'Bad!'",
        ),
        (
            &["podsec-k8s", "u7s-kubeadm", "init", "--ttl", "1h"],
            None,
            "неизвестный флаг --ttl для kubeadm init (см. kubeadm init --help)",
            "unknown flag --ttl for kubeadm init (see kubeadm init --help)",
        ),
        (
            &[
                "podsec-k8s",
                "u7s-kubeadm",
                "init",
                "--config",
                "/tmp/init.yaml",
            ],
            None,
            "флаг --config не поддерживается: podsec сам генерирует конфигурацию kubeadm",
            "flag --config is not supported: podsec generates the kubeadm configuration",
        ),
        (
            &["podsec-k8s", "k8s-save-oci", "/tmp/k8s-oci", "sparc"],
            None,
            "неизвестная архитектура sparc; допустимы: amd64 arm64 arm ppc64le 386",
            "unknown architecture sparc; allowed: amd64 arm64 arm ppc64le 386",
        ),
        (
            &["podsec", "no-such-command"],
            None,
            "неизвестная команда 'no-such-command'",
            "unknown command 'no-such-command'",
        ),
        (
            &["podsec-inotify", "check-containers", "--max-watches", "0"],
            None,
            "значение --max-watches должно быть не меньше 1",
            "--max-watches must be at least 1",
        ),
    ];
    for (argv, user, russian, english) in cases {
        let out = run_as(&sandbox, *user, &ru, argv);
        assert!(!out.status.success(), "{argv:?} must fail");
        let text = stderr(&out);
        assert!(text.contains(russian), "{argv:?} under ru_RU: {text}");
        assert!(
            !text.contains(english),
            "{argv:?} under ru_RU still English: {text}"
        );
        // The same under C, and LC_ALL=C over a Russian LANG, is English.
        for env in [
            &[("LANG", "C")][..],
            &[("LANG", "ru_RU.UTF-8"), ("LC_ALL", "C")][..],
        ] {
            let text = stderr(&run_as(&sandbox, *user, env, argv));
            assert!(text.contains(english), "{argv:?} with {env:?}: {text}");
        }
    }
    // LANGUAGE picks Russian for a locale that is not C; LC_MESSAGES alone does too.
    for env in [
        &[("LANG", "de_DE.UTF-8"), ("LANGUAGE", "ru")][..],
        &[("LC_MESSAGES", "ru_RU.UTF-8")][..],
    ] {
        let text = stderr(&run_as(
            &sandbox,
            None,
            env,
            &["podsec", "create-policy", "999.1.1.1"],
        ));
        assert!(text.contains("недопустимый IP-адрес"), "{env:?}: {text}");
    }
    // An error template of the library, translated at the edge.
    let text = stderr(&run_as(
        &sandbox,
        Some("maker"),
        &ru,
        &[
            "podsec",
            "load-sign-oci",
            "/nonexistent.tar.xz",
            "amd64",
            "me@example.com",
            "registry.local/demo",
        ],
    ));
    assert!(
        text.contains("архив /nonexistent.tar.xz отсутствует или не является обычным файлом"),
        "{text}"
    );
    // An OS error inside a translated message is translated too.
    let text = stderr(&run_as(
        &sandbox,
        Some("alice"),
        &ru,
        &["podsec-k8s-rbac", "create-remoteplace", "ws.example.com"],
    ));
    assert!(
        text.contains(
            "не удалось прочитать /home/alice/.kube/config: Нет такого файла или каталога"
        ),
        "{text}"
    );

    // Monitoring output stays English whatever the locale: Nagios parses it.
    let out = run_as(
        &sandbox,
        Some("alice"),
        &ru,
        &["podsec-inotify", "check-policy"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("UNKNOWN"), "{stdout}");
    assert!(!stdout.chars().any(cyrillic), "{stdout}");

    // podsec-inotify: what the administrator reads follows the locale, what monitoring reads
    // does not. A plugin given a token of an old unit file: the warning on stderr is Russian,
    // the status line on stdout and the journal lines (on stderr: the sandbox has no log
    // daemon) stay English.
    for (env, warning) in [
        (&ru[..], "предупреждение: аргумент '2>&1' пропущен"),
        (&[("LANG", "C")][..], "warning: ignoring argument '2>&1'"),
    ] {
        let out = run_as(
            &sandbox,
            None,
            env,
            &["podsec-inotify", "check-policy", "2>&1"],
        );
        let (stdout, text) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(text.contains(warning), "{env:?}: {text}");
        assert!(stdout.starts_with("POLICY "), "{env:?}: {stdout}");
        assert!(!stdout.chars().any(cyrillic), "{env:?}: {stdout}");
        for line in text.lines().filter(|l| !l.contains(warning)) {
            assert!(!line.chars().any(cyrillic), "{env:?}: {line}");
        }
    }
    // check-kubeapi: a request refused with 403 makes a Critical journal line and a
    // forbidden.log record, both English under a Russian locale; its notes are Russian.
    let event = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"alice"},"sourceIPs":["192.0.2.7"],"responseStatus":{"metadata":{},"status":"Failure","message":"pods is forbidden","code":403},"requestReceivedTimestamp":"2024-05-01T00:00:00.000000Z","stageTimestamp":"2024-05-01T00:00:00.000000Z"}"#;
    std::fs::write(sandbox.share().join("audit.log"), format!("{event}\n")).unwrap();
    sandbox.sh_ok(&format!(
        "mkdir -p -m 0700 /etc/kubernetes/audit && cp {}/audit.log /etc/kubernetes/audit/audit.log",
        sandbox.share().display()
    ));
    let out = run_as(
        &sandbox,
        None,
        &ru,
        &["podsec-inotify", "check-kubeapi", "--once"],
    );
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    let record = r#"["2024-05-01T00:00:00.000000Z","192.0.2.7","pods is forbidden"]"#;
    assert!(
        text.contains(&format!(
            "podsec-inotify-check-kubeapi: Critical: {record} access denied (403)"
        )),
        "{text}"
    );
    assert!(!text.chars().any(cyrillic), "{text}");
    assert_eq!(
        sandbox.sh_ok("cat /var/lib/podsec/u7s/log/kubeapi/forbidden.log"),
        format!("{record}\n")
    );
    for (env, note) in [
        (&ru[..], "/nonexistent/audit.log: журнала аудита нет"),
        (&[("LANG", "C")][..], "/nonexistent/audit.log: no audit log"),
    ] {
        let out = run_as(
            &sandbox,
            None,
            env,
            &[
                "podsec-inotify",
                "check-kubeapi",
                "--once",
                "--audit-log",
                "/nonexistent/audit.log",
            ],
        );
        assert!(out.status.success(), "{env:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(note), "{env:?}: {}", stderr(&out));
    }
}

fn cyrillic(c: char) -> bool {
    ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c))
}

#[test]
fn russian_man_pages_are_rendered_for_the_translated_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut pages = BTreeSet::new();
    for binary in ["podsec", "podsec-k8s", "podsec-k8s-rbac", "podsec-inotify"] {
        let out = Command::new(target_dir().join(binary))
            .args(["--generate", "man-ru"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(out.stderr.is_empty(), "{binary}: {}", stderr(&out));
        let list = Command::new(target_dir().join(binary))
            .arg("--list")
            .output()
            .unwrap();
        pages.extend(
            String::from_utf8_lossy(&list.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    for command in &pages {
        let page = dir.path().join(format!("{command}.1"));
        let out = Command::new("man")
            .env("MANWIDTH", "80")
            .arg("-l")
            .arg(&page)
            .output()
            .expect("man");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "man -l {}", page.display());
        for heading in ["ИМЯ", "ОБЗОР", "ОПИСАНИЕ", "ПАРАМЕТРЫ"] {
            assert!(text.contains(heading), "{command}: {heading}\n{text}");
        }
        assert!(
            text.contains("Показать справку"),
            "{command}: --help is translated"
        );
        assert!(!text.contains("Print help"), "{command}: {text}");
    }
}

/// The package binaries; every command name of `<binary> --list` is an installed link.
const BINARIES: &[&str] = &["podsec", "podsec-k8s", "podsec-k8s-rbac", "podsec-inotify"];

/// Runs `program args` with the locale variables of `env` only (the caller's removed), as
/// nobody when the tests run as root: nothing a command does by mistake (a plugin that took
/// `--help` for a word) can touch this host.
fn run_in_locale(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    command.args(args);
    if nix::unistd::geteuid().is_root() {
        command.uid(65534).gid(65534);
    }
    for name in ["LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.stdin(std::process::Stdio::null());
    command.stdout(std::process::Stdio::piped());
    command.stderr(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    // A command that takes stray words (check-containers: tokens of old unit files) starts
    // working instead of failing: it is stopped after a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

/// The argument entries of a clap help, as (the flag or value as written, its help text):
/// the indented lines under each heading (`Options:`, `Параметры:`...), a help text wrapped
/// onto the next lines or written below its flag (`--help`) included.
fn help_entries(help: &str) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut in_section = false;
    // The indentation of the entry being read: its help goes on in lines indented deeper.
    let mut entry_indent: Option<usize> = None;
    for line in help.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            // A heading starts a section of entries; other text (the after-help) ends it.
            in_section = line.trim_end().ends_with(':') && !line.contains(' ');
            entry_indent = None;
            continue;
        }
        if !in_section {
            continue;
        }
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let entry = matches!(
            (indent, body.chars().next()),
            (2, Some('-' | '<' | '[')) | (6, Some('-'))
        );
        if entry {
            let (spec, help) = match body.find("  ") {
                Some(at) => (&body[..at], body[at..].trim()),
                None => (body, ""),
            };
            entries.push((spec.to_string(), help.to_string()));
            entry_indent = Some(indent);
        } else if entry_indent.is_some_and(|at| indent > at)
            && let Some((_, help)) = entries.last_mut()
        {
            if !help.is_empty() {
                help.push(' ');
            }
            help.push_str(body);
        } else {
            entry_indent = None;
        }
    }
    entries
}

#[test]
fn help_entries_are_found_in_both_layouts() {
    let short = "About.\n\nUsage: x [OPTIONS] <IP>\n\nArguments:\n  <IP>  the address\n\nOptions:\n  -b, --batch          no questions\n      --email <EMAIL>  key address, wrapped\n                       onto a second line\n  -h, --help           Print help\n\nExamples:\n  x 192.0.2.1\n";
    assert_eq!(
        help_entries(short),
        vec![
            ("<IP>".to_string(), "the address".to_string()),
            ("-b, --batch".to_string(), "no questions".to_string()),
            (
                "--email <EMAIL>".to_string(),
                "key address, wrapped onto a second line".to_string()
            ),
            ("-h, --help".to_string(), "Print help".to_string()),
        ]
    );
    let long = "Options:\n  -b, --batch\n          no questions\n\n          at all\n\n  -h, --help\n          Print help\n";
    assert_eq!(
        help_entries(long),
        vec![
            ("-b, --batch".to_string(), "no questions at all".to_string()),
            ("-h, --help".to_string(), "Print help".to_string()),
        ]
    );
}

/// Issue 17: every installed command name's `--help` (and `-h` where it is help), the u7s
/// helpers' included, is Russian under a Russian locale, its description and the help of
/// every argument (a new command or flag without a translation fails here), and English under
/// C.UTF-8; so are the package binaries' own help and a usage error.
#[test]
fn every_command_help_follows_the_locale() {
    let ru = [("LANG", "ru_RU.UTF-8")];
    let en = [("LANG", "C.UTF-8")];
    let links = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        links.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for binary in BINARIES {
        let program = target_dir().join(binary);
        let list = run_in_locale(&program, &["--list"], &en);
        let mut names: Vec<String> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert!(!names.is_empty(), "{binary} --list");
        // The links of /usr/libexec/podsec/u7s/bin: kubeadm and the u7s helpers (those that
        // pass everything to a tool, systemctl and rootlessctl, show the tool's help).
        let u7s = run_in_locale(&program, &["--list-u7s"], &en);
        names.extend(
            String::from_utf8_lossy(&u7s.stdout)
                .lines()
                .filter_map(|line| line.split('\t').next())
                .map(str::to_string),
        );
        // The binary's own help lists its commands.
        let text =
            String::from_utf8_lossy(&run_in_locale(&program, &["--help"], &ru).stdout).into_owned();
        if !text.contains("Использование:") || !text.chars().any(cyrillic) {
            failures.push(format!("{binary} --help under ru_RU:\n{text}"));
        }
        let text =
            String::from_utf8_lossy(&run_in_locale(&program, &["--help"], &en).stdout).into_owned();
        if text.chars().any(cyrillic) || !text.contains("Usage:") {
            failures.push(format!("{binary} --help under C.UTF-8:\n{text}"));
        }
        for name in &names {
            let link = links.path().join(name);
            std::os::unix::fs::symlink(&program, &link).unwrap();
            for flag in ["--help", "-h"] {
                let english = run_in_locale(&link, &[flag], &en);
                let english_text = String::from_utf8_lossy(&english.stdout).into_owned();
                if !(english.status.success() && english_text.contains("\nUsage: ")) {
                    // -h is not help here (a Nagios range of the plugins), or the command
                    // shows another tool's help (systemctl, rootlessctl).
                    assert!(
                        flag == "-h" || ["systemctl", "rootlessctl"].contains(&name.as_str()),
                        "{name} {flag} under C.UTF-8 is no help: {english_text}"
                    );
                    continue;
                }
                checked += 1;
                if !english.status.success() || english_text.chars().any(cyrillic) {
                    failures.push(format!("{name} {flag} under C.UTF-8:\n{english_text}"));
                }
                let russian = run_in_locale(&link, &[flag], &ru);
                let text = String::from_utf8_lossy(&russian.stdout).into_owned();
                let description = text.lines().next().unwrap_or_default();
                let entries = help_entries(&text);
                let untranslated: Vec<String> = entries
                    .iter()
                    .filter(|(_, help)| !help.chars().any(cyrillic))
                    .map(|(spec, help)| format!("{spec}: {help:?}"))
                    .collect();
                if !russian.status.success()
                    || !description.chars().any(cyrillic)
                    || !text.contains("Использование:")
                    || entries.is_empty()
                    || !untranslated.is_empty()
                {
                    failures.push(format!(
                        "{name} {flag} under ru_RU: untranslated {untranslated:?}\n{text}"
                    ));
                }
            }
            // A usage error follows the locale (the plugins report it on their English
            // status line, for Nagios; the kubeadm wrapper names the flag in its own words).
            let english = run_in_locale(&link, &["--no-such-option"], &en);
            if String::from_utf8_lossy(&english.stderr).contains("unexpected argument") {
                let russian = run_in_locale(&link, &["--no-such-option"], &ru);
                let text = stderr(&russian);
                if !text.contains("неизвестный аргумент '--no-such-option'") {
                    failures.push(format!("{name} --no-such-option under ru_RU: {text}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} help texts not in the language of the locale:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // Every command's --help, and -h where it is help (all but the Nagios plugins').
    assert!(checked >= 50, "only {checked} help texts checked");
}
