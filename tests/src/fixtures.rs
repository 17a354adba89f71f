//! Things the end-to-end tests build for themselves: the link farm of installed command names and
//! a tiny image made from the Debian busybox-static binary (no registry is reachable here).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sandbox::{Sandbox, target_dir};

/// The package binaries built by cargo.
pub const PACKAGE_BINARIES: &[&str] =
    &["podsec", "podsec-k8s", "podsec-k8s-rbac", "podsec-inotify"];

/// `target/<profile>/podsec-links/`: one symlink per command name to its package binary, as
/// `make install` lays them out; the list comes from each binary's `--list`.
pub fn command_links() -> PathBuf {
    static LINKS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LINKS.get_or_init(make_command_links).clone()
}

fn make_command_links() -> PathBuf {
    let target = target_dir();
    let links = target.join("podsec-links");
    std::fs::create_dir_all(&links).expect("create link farm");
    for package in PACKAGE_BINARIES {
        let binary = target.join(package);
        let output = Command::new(&binary)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{} not built ({e}): run `cargo build --workspace` first",
                    binary.display()
                )
            });
        assert!(output.status.success(), "{package} --list failed");
        for name in String::from_utf8_lossy(&output.stdout).lines() {
            // Other test processes may build the farm at the same time: replace atomically.
            let temp = links.join(format!(".{name}.{}", std::process::id()));
            let _ = std::fs::remove_file(&temp);
            std::os::unix::fs::symlink(&binary, &temp).expect("symlink");
            std::fs::rename(&temp, links.join(name)).expect("rename link");
        }
    }
    links
}

/// PATH for commands in a sandbox: the link farm first.
pub fn path_with_commands() -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        command_links().display()
    )
}

/// Builds `localhost/<name>` (a busybox root file system) in root's storage of the sandbox and
/// saves it as a docker-archive into the share directory; returns that archive's path.
pub fn busybox_image(sandbox: &Sandbox, name: &str) -> PathBuf {
    let archive = sandbox.share().join(format!("{name}.tar"));
    let script = format!(
        r#"set -e
root=$(mktemp -d)
mkdir -p "$root/bin" "$root/etc"
cp /bin/busybox "$root/bin/busybox"
for tool in sh id cat echo ls touch sleep; do ln -s busybox "$root/bin/$tool"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
ctr=$(buildah from scratch)
buildah copy "$ctr" "$root/" / >/dev/null
buildah config --cmd /bin/sh "$ctr"
buildah commit -q "$ctr" localhost/{name} >/dev/null
buildah rm "$ctr" >/dev/null
# The host policy may reject everything (podsec's does): this copy is test plumbing.
echo '{{"default":[{{"type":"insecureAcceptAnything"}}]}}' > "$root/policy.json"
rm -f {archive}
skopeo --policy "$root/policy.json" copy -q containers-storage:localhost/{name} docker-archive:{archive}:localhost/{name}:latest
chmod 0644 {archive}
rm -rf "$root""#,
        archive = archive.display()
    );
    sandbox.sh_ok(&script);
    archive
}

/// sha256 and mode of every file below `root` (missing root = empty), for byte-identity checks.
pub fn tree_digest(root: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            entries.push((path.clone(), mode, Vec::new()));
            let mut children: Vec<PathBuf> = std::fs::read_dir(&path)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            children.sort();
            stack.extend(children);
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap_or_default();
            entries.push((path, mode, target.as_os_str().as_encoded_bytes().to_vec()));
        } else {
            entries.push((path.clone(), mode, std::fs::read(&path).unwrap_or_default()));
        }
    }
    entries
}

/// `sh -c PUSH_TAGS push repository:tag1,tag2 ...` pushes a tiny image (a config blob and one
/// manifest per tag: listing tags needs nothing more) under every tag to http://registry.local.
pub const PUSH_TAGS: &str = r#"set -e
cfg=$TMPDIR/config.json
printf '%s' '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}' > $cfg
digest=sha256:$(sha256sum $cfg | cut -d' ' -f1); size=$(stat -c%s $cfg)
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":$size,\"digest\":\"$digest\"},\"layers\":[]}"
for entry in "$@"; do
  repo=${entry%%:*}; tags=${entry#*:}
  location=$(curl -sf -D - -o /dev/null -X POST http://registry.local/v2/$repo/blobs/uploads/ | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $location in http*) ;; *) location=http://registry.local$location ;; esac
  curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary @$cfg "$location&digest=$digest"
  for tag in $(echo $tags | tr ',' ' '); do
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' -d "$manifest" http://registry.local/v2/$repo/manifests/$tag
  done
done"#;
