//! podsec-k8s-save-oci end to end (issue 6, acceptance 7): the Kubernetes images saved per
//! architecture, loaded and signed into registry.local by podsec-load-sign-oci, are exactly the
//! images the node's kubeadm and CRI-O configuration pull, and skopeo with the node's policy
//! accepts every one of them. No registry.k8s.io or registry.altlinux.org is reachable here:
//! synthetic two-architecture images with the exact names and tags kubeadm lists are pushed to
//! a local source registry first. kubeadm is the real one (scripts/k8s-bins); CRI-O is the
//! recording stand-in, whose record says which pause image and policy it was configured with.

use std::collections::BTreeSet;

use podsec_tests::u7s::{NODE_IP, NodeSpec, U7sNode, text};

const SOURCE: &str = "127.0.0.1:5001";
const MAKER: &str = "imagemaker";
const EMAIL: &str = "imagemaker@registry.local";
const VERSION: &str = podsec_tests::k8s::VERSION;
/// The flannel release of podsec's newest shipped manifest, and that manifest's CNI plugin.
const FLANNEL: &str = "v0.26.7";
const CNI_PLUGIN: &str = "v1.7.1-flannel1";

/// A plain-HTTP source registry on 127.0.0.1:5001 that registries.conf marks insecure (the
/// product verifies TLS for every other registry), holding a two-architecture manifest list
/// under each of `images`.
fn source_registry(node: &U7sNode, images: &[String]) {
    let config = node.sandbox.share().join("source-registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {SOURCE}\n",
            node.sandbox.share().join("source-data").display()
        ),
    )
    .unwrap();
    node.sandbox
        .spawn_daemon(
            "source-registry",
            &["docker-registry", "serve", config.to_str().unwrap()],
        )
        .unwrap();
    let mut script = format!(
        r#"set -e
printf '\n[[registry]]\nlocation = "{SOURCE}"\ninsecure = true\n' >> /etc/containers/registries.conf
for i in $(seq 50); do curl -fs http://{SOURCE}/v2/ >/dev/null && break; sleep 0.1; done
root=$(mktemp -d); mkdir -p $root/bin; cp /bin/busybox $root/bin/
buildah manifest create localhost/synthetic >/dev/null
for arch in amd64 arm64; do
  ctr=$(buildah from scratch)
  buildah copy -q $ctr $root/ / >/dev/null
  echo "synthetic $arch" > $root/arch; buildah copy -q $ctr $root/arch /podsec-arch >/dev/null
  buildah config --arch $arch --os linux --cmd /bin/busybox $ctr
  buildah commit -q $ctr localhost/synthetic-$arch >/dev/null
  buildah rm $ctr >/dev/null
  buildah manifest add --arch $arch localhost/synthetic containers-storage:localhost/synthetic-$arch >/dev/null
done
"#
    );
    for image in images {
        script.push_str(&format!(
            "buildah manifest push -q --all --tls-verify=false localhost/synthetic docker://{image}\n"
        ));
    }
    node.root_ok(&script);
}

/// The registry's images below registry.local/c10f, as `registry.local/c10f/<name>:<tag>`.
fn registry_local_images(node: &U7sNode) -> BTreeSet<String> {
    let catalog: serde_json::Value =
        serde_json::from_str(&node.root_ok("curl -fs http://registry.local/v2/_catalog")).unwrap();
    let mut images = BTreeSet::new();
    for repository in catalog["repositories"].as_array().unwrap() {
        let repository = repository.as_str().unwrap();
        if !repository.starts_with("c10f/") {
            continue;
        }
        let tags: serde_json::Value = serde_json::from_str(&node.root_ok(&format!(
            "curl -fs http://registry.local/v2/{repository}/tags/list"
        )))
        .unwrap();
        for tag in tags["tags"].as_array().unwrap() {
            images.insert(format!(
                "registry.local/{repository}:{}",
                tag.as_str().unwrap()
            ));
        }
    }
    images
}

#[test]
fn saved_loaded_and_signed_images_are_exactly_what_the_node_pulls_and_its_policy_accepts() {
    let node = U7sNode::set_up(&NodeSpec::default());
    let kubeadm = podsec_tests::k8s::binary("kubeadm").unwrap();
    node.root_ok(&format!(
        "install -m 0755 {} /usr/bin/kubeadm",
        kubeadm.display()
    ));
    // The trust chain of podsec on this node: policy, registry.local, an image maker for c10f.
    node.root_ok(&format!(
        "podsec-create-policy {NODE_IP} >/dev/null && podsec-create-services >/dev/null && \
         podsec-create-imagemakeruser --batch --email {EMAIL} {MAKER}@registry.local/c10f >/dev/null"
    ));
    let source_images: Vec<String> = node
        .root_ok(&format!(
            "/usr/bin/kubeadm config images list --kubernetes-version {VERSION} --image-repository {SOURCE}/c10f"
        ))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(source_images.len(), 7, "{source_images:?}");
    // flannel as the wrapper picks it: the newest release with a shipped manifest (v0.26, not
    // v0.27 that podsec has no manifest for, not the older v0.25) and that manifest's CNI plugin.
    let flannel = [
        format!("{SOURCE}/c10f/flannel:v0.25.7"),
        format!("{SOURCE}/c10f/flannel:{FLANNEL}"),
        format!("{SOURCE}/c10f/flannel:v0.27.0"),
        format!("{SOURCE}/c10f/flannel-cni-plugin:{CNI_PLUGIN}"),
    ];
    source_registry(&node, &[source_images.as_slice(), &flannel].concat());

    let dpkg_before = node.root_ok("sha256sum /var/lib/dpkg/status /usr/bin/kubeadm");
    let dir = node.sandbox.share().join("k8s");
    // Two architectures; the platform argument beats U7S_PLATFORM and is applied first.
    let out = node
        .sandbox
        .command("podsec-k8s-save-oci")
        .args([dir.to_str().unwrap(), "amd64,arm64", "c10f"])
        .env("PATH", podsec_tests::u7s::ADMIN_PATH)
        .env("U7S_ALTREGISTRY", SOURCE)
        .env("U7S_KUBEVERSION", VERSION)
        .env("U7S_PLATFORM", "p10")
        .output();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Nothing was installed on the archiving host (upstream installed the cluster packages).
    assert_eq!(
        node.root_ok("sha256sum /var/lib/dpkg/status /usr/bin/kubeadm"),
        dpkg_before
    );
    for arch in ["amd64", "arm64"] {
        assert!(
            dir.join(format!("{arch}.tar.xz")).is_file(),
            "{arch} archive missing"
        );
        assert!(!dir.join(arch).exists());
        // Each archive holds its own architecture's image of every name.
        let config = node.root_ok(&format!(
            "set -e; t=$(mktemp -d); tar -C $t -xJf {dir}/{arch}.tar.xz; \
             skopeo inspect --config oci:$t/{arch}:c10f/pause:3.10",
            dir = dir.display()
        ));
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["architecture"], arch, "{config}");
    }
    node.root_ok(&format!("chmod -R a+rX {}", dir.display()));

    let out = node
        .sandbox
        .command("sh")
        .args([
            "-c",
            &format!(
                "podsec-load-sign-oci {}/amd64.tar.xz amd64 {EMAIL} registry.local/c10f",
                dir.display()
            ),
        ])
        .env("PATH", podsec_tests::u7s::ADMIN_PATH)
        .user(MAKER)
        .output();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("9 of 9 images pushed and signed"),
        "{}",
        text(&out.stdout)
    );

    // What the node pulls: kubeadm's images for the node's repository and version, flannel's
    // two, and the pause image its CRI-O was configured with (the stand-in's record of a real
    // start).
    let mut node_images: BTreeSet<String> = node
        .root_ok(&format!(
            "/usr/bin/kubeadm config images list --kubernetes-version {VERSION} --image-repository registry.local/c10f"
        ))
        .lines()
        .map(str::to_string)
        .collect();
    node_images.insert(format!("registry.local/c10f/flannel:{FLANNEL}"));
    node_images.insert(format!(
        "registry.local/c10f/flannel-cni-plugin:{CNI_PLUGIN}"
    ));
    node.root_ok("u7s-start-stop start --namespace-only >/dev/null");
    let crio = node.record("crio");
    node.root_ok("u7s-start-stop stop >/dev/null");
    let pause = crio["config"]["crio"]["image"]["pause_image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        node_images.contains(&pause),
        "{pause} not in {node_images:?}"
    );
    assert_eq!(
        crio["config"]["crio"]["image"]["signature_policy"],
        "/etc/containers/policy.json"
    );
    assert_eq!(registry_local_images(&node), node_images);

    // The node's policy accepts every one, and is not a policy that accepts anything.
    for image in &node_images {
        let out = node.root(&format!("skopeo copy -q docker://{image} dir:$(mktemp -d)"));
        assert!(out.status.success(), "{image}: {}", text(&out.stderr));
    }
    let accept = node.sandbox.share().join("accept.json");
    std::fs::write(
        &accept,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    node.root_ok(&format!(
        "skopeo --policy {} copy -q --remove-signatures --dest-tls-verify=false docker://{SOURCE}/c10f/pause:3.10 docker://registry.local/c10f/unsigned:1",
        accept.display()
    ));
    let out = node.root("skopeo copy -q docker://registry.local/c10f/unsigned:1 dir:$(mktemp -d)");
    assert!(!out.status.success(), "an unsigned image was accepted");
    assert!(
        text(&out.stderr).contains("A signature was required, but no signature exists"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_arguments_change_nothing_and_say_what_is_wrong() {
    let node = U7sNode::set_up(&NodeSpec::default());
    let dir = node.sandbox.share().join("k8s");
    let run = |args: &str| node.root(&format!("podsec-k8s-save-oci {args}"));
    // Upstream said "Image archiving directory not specified" for a missing architecture.
    let out = run(&dir.display().to_string());
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("<arch>") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let out = run(&format!("{} amd64,sparc c10f", dir.display()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown architecture sparc"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&format!("{} amd64 k8s-c10f2", dir.display()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("k8s- prefix"),
        "{}",
        text(&out.stderr)
    );
    // This host is Debian: without an argument or U7S_PLATFORM the platform is unknown.
    let out = run(&format!("{} amd64", dir.display()));
    assert!(
        text(&out.stderr).contains("the platform is unknown"),
        "{}",
        text(&out.stderr)
    );
    // No kubeadm of the wanted minor: said, not guessed.
    let out = node.root(&format!(
        "U7S_KUBEVERSION=v1.30.14 podsec-k8s-save-oci {} amd64 c10f",
        dir.display()
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/usr/bin/kubeadm is needed"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.exists(), "a failed run left {}", dir.display());
}
