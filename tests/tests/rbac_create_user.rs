//! Issue 13 item 8: podsec-k8s-rbac-create-user --password-stdin gives the new account the
//! password read from standard input (through chpasswd, never on a command line), so the user
//! can log in over ssh as upstream's docs assume; a bad password is refused before anything is
//! created.

use podsec_tests::fixtures::path_with_commands;
use podsec_tests::sandbox::{Options, Sandbox};

fn create_user(sandbox: &Sandbox, args: &[&str], stdin: &[u8]) -> std::process::Output {
    sandbox
        .command("podsec-k8s-rbac-create-user")
        .args(args)
        .env("PATH", &path_with_commands())
        .stdin(stdin)
        .output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_password_from_stdin_is_set_and_a_bad_one_creates_nothing() {
    let sandbox = Sandbox::start(&Options::default()).expect("sandbox (needs root)");

    // Refused before anything is made: no account, no group k8s, no home.
    for (input, problem) in [
        (&b"bad:word\n"[..], "contains ':'"),
        (&b"\n"[..], "the password is empty"),
        (&b""[..], "the password is empty"),
    ] {
        let out = create_user(&sandbox, &["--password-stdin", "alice"], input);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("podsec-k8s-rbac-create-user: --password-stdin: ")
                && stderr.contains(problem),
            "{stderr}"
        );
        sandbox.sh_ok("! id alice 2>/dev/null && ! getent group k8s && test ! -e /home/alice");
    }

    // Only the first line counts; the hash in /etc/shadow is that of the password.
    let out = create_user(
        &sandbox,
        &["--password-stdin", "alice"],
        b"Kube-pass 2026\nignored\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("account 'alice' created"));
    let hash = sandbox.sh_ok("getent shadow alice | cut -d: -f2");
    let hash = hash.trim();
    assert!(hash.starts_with('$'), "not a password hash: {hash}");
    // The same crypt(3) of the same salt gives the same hash: the password is exactly the line.
    let check = sandbox.sh_ok(&format!(
        "python3 -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])' \
         'Kube-pass 2026' '{hash}' 2>/dev/null"
    ));
    assert_eq!(check.trim(), "True");
    sandbox.sh_ok("id -nG alice | grep -qw k8s && test \"$(stat -c %a /home/alice/.kube)\" = 700");

    // Without the flag, a new account has no password (and nothing is read).
    let out = create_user(&sandbox, &["bob"], b"not read\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bob = sandbox.sh_ok("getent shadow bob | cut -d: -f2");
    assert!(!bob.trim().starts_with('$'), "{bob}");

    // An existing account gets the new password when asked.
    let out = create_user(&sandbox, &["--password-stdin", "bob"], b"Other-pass\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        sandbox
            .sh_ok("getent shadow bob | cut -d: -f2")
            .starts_with('$')
    );
}
