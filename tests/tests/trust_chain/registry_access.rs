//! Who may push where: credentials for pushes with anonymous pulls, verified TLS to other
//! registries, and makers who cannot touch each other's signatures.

use super::*;

#[test]
fn pushes_can_require_credentials_while_pulls_stay_anonymous() {
    let server = Server::start();
    let archive = server.archive("app.tar.xz", &["demo/app:1"]);
    let htpasswd = server.sandbox.share().join("push.htpasswd");
    server.root_ok(&format!(
        "echo \"imagemaker:$(openssl passwd -apr1 s3cret)\" > {}",
        htpasswd.display()
    ));
    server.root_ok(&format!(
        "podsec-create-services --push-htpasswd {}",
        htpasswd.display()
    ));
    server.root_ok("podsec-create-services"); // the requirement stays on a later run
    // Anonymous pushes are refused now, by skopeo and by load-sign-oci alike.
    let anonymous = server.root(&format!(
        "skopeo --policy {} copy -q --remove-signatures --dest-tls-verify=false containers-storage:localhost/bb docker://registry.local/demo/anon:1",
        server.accept_anything().display()
    ));
    assert!(!anonymous.status.success(), "anonymous push accepted");
    let load = format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    );
    let out = server.maker(&load);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("FAILED"),
        "{}",
        text(&out.stdout)
    );
    // After `podman login` the same command pushes with the maker's credentials.
    server.maker_ok(&format!(
        "podman login -u imagemaker -p s3cret --tls-verify=false registry.local && {load}"
    ));
    server.pull("registry.local/demo/app:1").unwrap();
    // A malformed password file is refused and the previous one stays.
    let out = server
        .root("echo 'no colon here' > /tmp/bad && podsec-create-services --push-htpasswd /tmp/bad");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("expected user:hash lines"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        server
            .root_ok("cat /etc/podsec/registry/push.htpasswd")
            .starts_with("imagemaker:$apr1$")
    );
    assert_eq!(
        server.root_ok("stat -c '%U:%G %a' /etc/podsec/registry/push.htpasswd"),
        "root:www-data 640\n"
    );
}

/// Registries other than registry.local are reached over TLS, verified against containers'
/// certs.d, never over plain HTTP: the real docker-registry with TLS and htpasswd takes the
/// maker's `podman login` credentials, and a bearer-token registry (the token-server stand-in
/// in front of the real registry) gets a token of push scope. The pushed image is the one the
/// signature names: skopeo verifies it through a policy for that registry.
#[test]
fn pushes_to_other_registries_use_verified_tls_and_their_authentication() {
    let server = Server::start();
    let archive = server.archive("tls.tar.xz", &["demo/app:1"]);
    let pki = server.sandbox.share().join("tls");
    std::fs::create_dir_all(&pki).unwrap();
    podsec_tests::k8s::make_ca(&pki, "ca", "podsec-test-registry-ca").unwrap();
    podsec_tests::k8s::make_cert(
        &pki,
        "ca",
        "server",
        "/CN=tls.registry.test",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:tls.registry.test,DNS:token.registry.test\n",
    )
    .unwrap();
    let p = |name: &str| pki.join(name).display().to_string();
    // distribution's htpasswd wants bcrypt.
    server.root_ok(&format!(
        "python3 -W ignore -c 'import crypt; print(\"imagemaker:\" + crypt.crypt(\"s3cret\", crypt.mksalt(crypt.METHOD_BLOWFISH)))' > {}",
        p("htpasswd")
    ));
    std::fs::write(
        pki.join("registry.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/tls-registry\n\
             http:\n  addr: 127.0.0.1:5443\n  tls:\n    certificate: {}\n    key: {}\n\
             auth:\n  htpasswd:\n    realm: tls-test\n    path: {}\n",
            p("server.crt"),
            p("server.key"),
            p("htpasswd")
        ),
    )
    .unwrap();
    server.root_ok("echo '127.0.0.1 tls.registry.test token.registry.test' >> /etc/hosts");
    server
        .sandbox
        .spawn_daemon(
            "tls-registry",
            &["docker-registry", "serve", &p("registry.yml")],
        )
        .unwrap();
    server.root_ok(&format!(
        "for i in $(seq 100); do [ \"$(curl -s -o /dev/null -w '%{{http_code}}' --cacert {} https://tls.registry.test:5443/v2/)\" = 401 ] && exit 0; sleep 0.1; done; exit 1",
        p("ca.crt")
    ));
    let load = |target: &str| {
        format!(
            "podsec-load-sign-oci {} amd64 {EMAIL} {target}",
            archive.display()
        )
    };
    let catalog = || {
        server.root_ok(&format!(
            "curl -s --cacert {} -u imagemaker:s3cret https://tls.registry.test:5443/v2/_catalog",
            p("ca.crt")
        ))
    };

    // The registry's CA is not trusted yet: TLS is verified, nothing is pushed, and the
    // summary says where the CA goes.
    let out = server.maker(&load("tls.registry.test:5443/demo"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("/etc/containers/certs.d/tls.registry.test:5443/ca.crt"),
        "{}",
        text(&out.stdout)
    );
    assert!(!catalog().contains("demo/app"), "{}", catalog());

    // Trusted now, but the registry wants a login.
    server.root_ok(&format!(
        "install -D -m 0644 {} /etc/containers/certs.d/tls.registry.test:5443/ca.crt",
        p("ca.crt")
    ));
    let out = server.maker(&load("tls.registry.test:5443/demo"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("podman login"),
        "{}",
        text(&out.stdout)
    );
    assert!(!catalog().contains("demo/app"), "{}", catalog());

    // After `podman login` (which reads the same certs.d) the push goes through with the
    // maker's credentials.
    server.maker_ok(&format!(
        "podman login -u imagemaker -p s3cret tls.registry.test:5443 && {}",
        load("tls.registry.test:5443/demo")
    ));
    assert!(catalog().contains("demo/app"), "{}", catalog());

    // skopeo, with a policy that trusts the maker's key for that registry and the lookaside
    // store for it, accepts the pushed image: what was pushed is what was signed.
    let policy = server.sandbox.share().join("tls-policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"reject"}],"transports":{"docker":{"tls.registry.test:5443/demo":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/var/sigstore/keys/imagemaker.pgp"}],"token.registry.test:5444/demo":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/var/sigstore/keys/imagemaker.pgp"}]}}}"#,
    )
    .unwrap();
    let registries_d = server.sandbox.share().join("tls-registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("tls.yaml"),
        "docker:\n  tls.registry.test:5443:\n    lookaside: http://sigstore.local:81/sigstore/\n  token.registry.test:5444:\n    lookaside: http://sigstore.local:81/sigstore/\n",
    )
    .unwrap();
    let verify = |image: &str, creds: &str| {
        server.root(&format!(
            "skopeo --policy {} --registries.d {} copy -q {creds} docker://{image} dir:$(mktemp -d)",
            policy.display(),
            registries_d.display()
        ))
    };
    let out = verify(
        "tls.registry.test:5443/demo/app:1",
        "--src-creds imagemaker:s3cret",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A bearer-token registry: the token is fetched for pull and push of the repository and
    // every write carries it.
    let log = server.sandbox.share().join("token-registry.log");
    let stand_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("standins/token-registry.py");
    server
        .sandbox
        .spawn_daemon(
            "token-registry",
            &[
                "python3",
                stand_in.to_str().unwrap(),
                "--listen",
                "127.0.0.1:5444",
                "--cert",
                &p("server.crt"),
                "--key",
                &p("server.key"),
                "--upstream",
                "http://127.0.0.1:5000",
                "--public",
                "https://token.registry.test:5444",
                "--realm",
                "https://token.registry.test:5444/token",
                "--service",
                "token.registry.test",
                "--log",
                log.to_str().unwrap(),
            ],
        )
        .unwrap();
    server.root_ok(&format!(
        "install -D -m 0644 {0} /etc/containers/certs.d/token.registry.test:5444/ca.crt; for i in $(seq 100); do curl -s -o /dev/null --cacert {0} https://token.registry.test:5444/v2/ && exit 0; sleep 0.1; done; exit 1",
        p("ca.crt")
    ));
    server.maker_ok(&load("token.registry.test:5444/demo"));
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/token" && r["scope"] == "repository:demo/app:pull,push"),
        "{requests:?}"
    );
    let writes: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| r["method"] == "PUT" || r["method"] == "POST")
        .collect();
    assert!(
        writes.iter().any(|r| r["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/v2/demo/app/manifests/"))),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .all(|r| r["granted"] == "repository:demo/app:pull,push"),
        "{writes:?}"
    );
    let out = verify("token.registry.test:5444/demo/app:1", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The signature store gives each image maker only its own place: the top directory is root's,
/// a maker of `registry.local/<path>` writes only below its root-created directory, the maker of
/// the whole registry (upstream's default scope) alone creates entries at the top (an ACL entry,
/// sticky). Nobody can create anything in another maker's directory, pre-create its
/// `<repo>@sha256=...` directories or remove them; load-sign-oci never writes into a directory
/// that is not the caller's and says so before pushing anything.
#[test]
fn one_image_maker_can_neither_pre_create_nor_replace_anothers_signatures() {
    let server = Server::start(); // imagemaker@registry.local/demo
    server.root_ok(
        "podsec-create-imagemakeruser --batch --email whole@registry.local whole@registry.local",
    );
    server.root_ok(
        "podsec-create-imagemakeruser --batch --email other@registry.local other@registry.local/other",
    );
    assert_eq!(
        server.root_ok("cd /var/sigstore/sigstore && stat -c '%n %U:%G %A' . demo other"),
        ". root:root drwxrwxr-t\ndemo imagemaker:podman_dev drwxr-xr-x\nother other:podman_dev drwxr-xr-x\n"
    );
    let archive = server.archive("app.tar.xz", &["demo/app:1", "demo/tool:2"]);
    let app = server.manifest_hex("app.tar.xz", "demo/app:1");
    let tool = server.manifest_hex("app.tar.xz", "demo/tool:2");
    let store = "/var/sigstore/sigstore";

    // Another scoped maker and the whole-registry maker: nothing inside demo/, no
    // pre-created signature directory of imagemaker's, nothing removed or renamed.
    for (user, script) in [
        ("other", format!("mkdir {store}/demo/x")),
        ("other", format!("touch {store}/demo/x")),
        ("other", format!("mkdir {store}/demo/app@sha256={app}")),
        ("other", format!("mkdir {store}/app@sha256={app}")),
        ("other", format!("mkdir {store}/planted")),
        ("other", format!("rm -rf {store}/demo")),
        ("whole", format!("mkdir {store}/demo/app@sha256={app}")),
        ("whole", format!("mv {store}/demo {store}/demo.old")),
        ("whole", format!("rm -rf {store}/other")),
        ("imagemaker", format!("mkdir {store}/other/x")),
        ("imagemaker", format!("mkdir {store}/web@sha256={app}")),
    ] {
        let out = server.as_user(user, &script);
        assert!(!out.status.success(), "{user} could: {script}");
    }
    assert_eq!(
        server.root_ok(&format!("find {store} -mindepth 1 | sort")),
        format!("{store}/demo\n{store}/other\n"),
        "something was created or removed"
    );

    // A directory planted in imagemaker's place (as the group-writable store of earlier
    // versions allowed): the load fails before anything is pushed, naming it, and writes
    // nothing into it.
    server.root_ok(&format!(
        "mkdir -m 0777 {store}/demo/tool@sha256={tool} && chown other {store}/demo/tool@sha256={tool}"
    ));
    let snapshot = format!("find /var/lib/podsec/registry {store} | sort");
    let before = server.root_ok(&snapshot);
    let load = format!(
        "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
        archive.display()
    );
    let out = server.maker(&load);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(&format!(
            "{store}/demo/tool@sha256={tool} belongs to other, not to you"
        )),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.root_ok(&snapshot), before, "something was pushed");

    // Root removes it: the load goes through, into directories of imagemaker's own, 0755
    // whatever the umask.
    server.root_ok(&format!("rmdir {store}/demo/tool@sha256={tool}"));
    let out = server.maker(&format!("umask 077; {load}"));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        server.root_ok(&format!(
            "cd {store}/demo && stat -c '%U %a' app@sha256={app} tool@sha256={tool} app@sha256={app}/signature-1"
        )),
        "imagemaker 755\nimagemaker 755\nimagemaker 644\n"
    );
    server.pull("registry.local/demo/app:1").unwrap();
    server.pull("registry.local/demo/tool:2").unwrap();

    // The whole-registry maker signs registry.local/apps/... at the top of the store; the
    // demo maker cannot sign there and is told so before anything is pushed.
    let apps = server.archive("apps.tar.xz", &["apps/web:1"]);
    let web = server.manifest_hex("apps.tar.xz", "apps/web:1");
    let load_apps = format!(
        "podsec-load-sign-oci {} amd64 {{email}} registry.local/apps",
        apps.display()
    );
    let before = server.root_ok(&snapshot);
    let out = server.maker(&load_apps.replace("{email}", EMAIL));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(&format!(
            "cannot create {store}/apps: it is outside your signature directories"
        )),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.root_ok(&snapshot), before, "something was pushed");
    let out = server.as_user(
        "whole",
        &load_apps.replace("{email}", "whole@registry.local"),
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        server.root_ok(&format!(
            "stat -c '%U %a' {store}/apps {store}/apps/web@sha256={web}"
        )),
        "whole 755\nwhole 755\n"
    );
    server.pull("registry.local/apps/web:1").unwrap();

    // create-policy again keeps that arrangement (it is derived from the policy).
    server.root_ok(&format!("podsec-create-policy {SERVER_IP}"));
    assert!(
        server
            .as_user(
                "whole",
                &format!("mkdir {store}/more && rmdir {store}/more")
            )
            .status
            .success()
    );
    assert!(
        !server
            .as_user("other", &format!("mkdir {store}/more"))
            .status
            .success()
    );

    // A second maker of a whole registry would share the top: refused, nothing changed.
    let policy = server.root_ok("sha256sum /etc/containers/policy.json");
    let out = server.root(
        "podsec-create-imagemakeruser --batch --email harbor@harbor.example harbor@harbor.example",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "harbor@harbor.example would sign for a whole registry, as whole@registry.local does"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !server
            .root_ok("getent passwd harbor || true")
            .contains("harbor")
    );
    assert_eq!(
        server.root_ok("sha256sum /etc/containers/policy.json"),
        policy
    );
}
