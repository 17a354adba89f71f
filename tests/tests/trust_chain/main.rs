//! The podsec trust chain end to end with the real consumers of our files: docker-registry and
//! nginx serve, skopeo and podman read our policy.json, registries.d and signatures.

use std::path::{Path, PathBuf};

use podsec_tests::fixtures::{busybox_image, path_with_commands};
use podsec_tests::sandbox::{Options, Sandbox};

mod consumers;
mod registry_access;
mod setup;
mod signing;
mod upstream_defects;

const SERVER_IP: &str = "192.0.2.10";
const MAKER: &str = "imagemaker";
const EMAIL: &str = "imagemaker@registry.local";

struct Server {
    sandbox: Sandbox,
    path: String,
}

impl Server {
    /// create-policy, create-services, create-imagemakeruser on a fresh sandbox.
    fn start() -> Server {
        let sandbox = Sandbox::start(&Options {
            name: None,
            addresses: vec![format!("{SERVER_IP}/32")],
        })
        .unwrap();
        Server::set_up(sandbox, SERVER_IP)
    }

    fn set_up(sandbox: Sandbox, address: &str) -> Server {
        let server = Server {
            sandbox,
            path: path_with_commands(),
        };
        server.root_ok(&format!("podsec-create-policy {address}"));
        server.root_ok("podsec-create-services");
        server.root_ok(&format!(
            "podsec-create-imagemakeruser --batch --email {EMAIL} {MAKER}@registry.local/demo"
        ));
        server
    }

    fn root(&self, script: &str) -> std::process::Output {
        self.sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", &self.path)
            .output()
    }

    fn root_ok(&self, script: &str) -> String {
        succeeded(script, self.root(script))
    }

    fn maker(&self, script: &str) -> std::process::Output {
        self.as_user(MAKER, script)
    }

    fn maker_ok(&self, script: &str) -> String {
        succeeded(script, self.maker(script))
    }

    fn as_user(&self, user: &str, script: &str) -> std::process::Output {
        self.sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", &self.path)
            .user(user)
            .output()
    }

    /// The manifest digest's hex of image `reference` in the layout `archive` left in the share.
    fn manifest_hex(&self, archive: &str, reference: &str) -> String {
        let index = self
            .sandbox
            .share()
            .join(format!("{archive}.layout/amd64/index.json"));
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(index).unwrap()).unwrap();
        let manifest = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
            .expect("image in the layout");
        manifest["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap()
            .to_string()
    }

    /// An upstream-format archive: `amd64/` OCI layout with `demo/<name>:<tag>` images, tar.xz.
    fn archive(&self, file: &str, refs: &[&str]) -> PathBuf {
        busybox_image(&self.sandbox, "bb");
        let layout = self.sandbox.share().join(format!("{file}.layout"));
        let mut script = format!("set -e; rm -rf {0}; mkdir -p {0}; ", layout.display());
        for reference in refs {
            script.push_str(&format!(
                "skopeo --policy {policy} copy -q containers-storage:localhost/bb oci:{layout}/amd64:{reference}; ",
                policy = self.accept_anything().display(),
                layout = layout.display()
            ));
        }
        let archive = self.sandbox.share().join(file);
        script.push_str(&format!(
            "tar -C {} -cJf {1} amd64; chmod 0644 {1}",
            layout.display(),
            archive.display()
        ));
        self.root_ok(&script);
        archive
    }

    /// A permissive policy for test-side copies that are not under test.
    fn accept_anything(&self) -> PathBuf {
        let path = self.sandbox.share().join("accept-anything.json");
        std::fs::write(&path, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
        path
    }

    /// Pushes the test image unsigned (test plumbing with a permissive policy).
    fn push_unsigned(&self, destination: &str) {
        self.root_ok(&format!(
            "skopeo --policy {} copy -q --remove-signatures --dest-tls-verify=false containers-storage:localhost/bb docker://{destination}",
            self.accept_anything().display()
        ));
    }

    /// `skopeo copy docker://<image> dir:` with the system policy: Ok or the error text.
    fn pull(&self, image: &str) -> Result<(), String> {
        let out = self.root(&format!("skopeo copy -q docker://{image} dir:$(mktemp -d)"));
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out.stderr))
        }
    }
}

/// The script's stdout; the test fails with both outputs unless it exited 0.
fn succeeded(script: &str, out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{script}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn signature_files(server: &Server, repository: &str) -> Vec<String> {
    server
        .root_ok(&format!(
            "find /var/sigstore/sigstore/{repository}@sha256=* -name 'signature-*' | sort"
        ))
        .lines()
        .map(str::to_string)
        .collect()
}
