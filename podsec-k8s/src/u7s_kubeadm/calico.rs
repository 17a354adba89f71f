//! Calico, when the administrator chooses it (`U7S_CNI_PLUGIN=calico`): podsec ships no calico
//! manifest, so the administrator supplies Tigera's manifest install (`calico.yaml`, a
//! multi-document YAML with the `calico-node` DaemonSet) in `U7S_CALICO_MANIFEST`, its images
//! pushed (and signed) into the node's registry and named so in the manifest. The file is read
//! once, as root, through one descriptor (no symbolic link, FIFO or device; owned by root and
//! writable by nobody else, in directories only root can change), and every document parsed:
//! every container image of every workload (containers, initContainers, ephemeralContainers of
//! Pods, Deployments, DaemonSets, StatefulSets, ReplicaSets, Jobs, CronJobs, Lists of them) must
//! name a tag in the node's registry, which the plan then checks there and pulls. What is
//! applied is the validated copy in [`MANIFEST_COPY`], never the administrator's file again.
//! Nothing is changed in the manifest: its pod network (`CALICO_IPV4POOL_CIDR`) must agree with
//! the cluster's, and calico's own install-cni writes its CNI configuration inside the u7s
//! namespace (the host's /etc/cni is not touched).

use std::path::Path;

use podsec_common::i18n::Message;
use podsec_common::yaml;
use podsec_common::{msg, tr};
use serde_json::Value;

use super::network::Ipv4Net;
use crate::node_config::{TrustedReadError, read_root_trusted};

/// The validated copy the plan writes and `kubectl apply` reads (root-owned, beside flannel's).
pub const MANIFEST_COPY: &str = "/etc/podsec/u7s/calico.yaml";
/// The CNI configuration calico's install-cni writes inside the namespace.
pub const CONFLIST_NAME: &str = "10-calico.conflist";
/// Tigera's calico.yaml is well below 1 MiB; a larger file is not a manifest.
pub const MAX_SIZE: u64 = 16 << 20;
/// The pod network calico takes when its manifest names none (and kubeadm's default for it).
pub const DEFAULT_POD_CIDR: &str = "192.168.0.0/16";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
pub enum CalicoError {
    #[error("U7S_CALICO_MANIFEST={path}: no such file")]
    Missing { path: String },
    #[error("U7S_CALICO_MANIFEST={path}: cannot read it: {reason}")]
    Unreadable { path: String, reason: Message },
    #[error("U7S_CALICO_MANIFEST={path}: refused: {reason}")]
    Untrusted { path: String, reason: Message },
    #[error("U7S_CALICO_MANIFEST={path}: not YAML: {reason}")]
    NotYaml { path: String, reason: Message },
    #[error(
        "U7S_CALICO_MANIFEST={path}: the document at line {line} is not a Kubernetes object (no kind)"
    )]
    NotAnObject { path: String, line: u64 },
    #[error(
        "U7S_CALICO_MANIFEST={path}: no DaemonSet calico-node in it (podsec applies Calico's manifest install, calico.yaml, not the Tigera operator)"
    )]
    NoCalicoNode { path: String },
    #[error("U7S_CALICO_MANIFEST={path}: no container image in it")]
    NoImages { path: String },
    #[error("U7S_CALICO_MANIFEST={path}: {kind} {name}: container {container} has no image")]
    NoImage {
        path: String,
        kind: String,
        name: String,
        container: String,
    },
    #[error(
        "U7S_CALICO_MANIFEST={path}: image {image} names no tag (podsec checks and pulls images as REGISTRY/PATH/NAME:TAG)"
    )]
    NoTag { path: String, image: String },
    #[error(
        "U7S_CALICO_MANIFEST={path}: image {image} is not in the node's registry {registry}; push it there, signed, and name it so in the manifest"
    )]
    ForeignImage {
        path: String,
        image: String,
        registry: String,
    },
    #[error("U7S_CALICO_MANIFEST={path}: image {reason}")]
    NotInRegistry { path: String, reason: Message },
    #[error("U7S_CALICO_MANIFEST={path}: CALICO_IPV4POOL_CIDR '{value}': {reason}")]
    BadPoolCidr {
        path: String,
        value: String,
        reason: Message,
    },
    #[error(
        "U7S_CALICO_MANIFEST={path}: CALICO_IPV4POOL_CIDR {pool} differs from the pod network {pod} of --pod-network-cidr; make them agree"
    )]
    CidrMismatch {
        path: String,
        pool: String,
        pod: String,
    },
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// As the administrator gave it (for messages).
    pub path: String,
    /// The file's text, applied as it is.
    pub text: String,
    /// Every container image, in the order of first appearance, each once.
    pub images: Vec<String>,
    /// calico-node's `CALICO_IPV4POOL_CIDR`, if the manifest sets it.
    pub pool_cidr: Option<Ipv4Net>,
    /// calico-node's `CALICO_IPV4POOL_VXLAN` and `IP_AUTODETECTION_METHOD` values, if given.
    pub vxlan_mode: Option<String>,
    pub autodetection: Option<String>,
}

/// Reads and parses `U7S_CALICO_MANIFEST` (see the module's description).
pub fn load(path: &Path) -> Result<Manifest, CalicoError> {
    let shown = path.display().to_string();
    let text = read_trusted(path)?;
    parse(&text, &shown)
}

fn read_trusted(path: &Path) -> Result<String, CalicoError> {
    let shown = || path.display().to_string();
    let untrusted = |reason: Message| CalicoError::Untrusted {
        path: shown(),
        reason,
    };
    let unreadable = |e: std::io::Error| CalicoError::Unreadable {
        path: shown(),
        reason: Message::of(&e),
    };
    let data = read_root_trusted(path, MAX_SIZE).map_err(|e| match e {
        TrustedReadError::Untrusted(reason) => untrusted(reason),
        TrustedReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            CalicoError::Missing { path: shown() }
        }
        TrustedReadError::Io(e) => unreadable(e),
    })?;
    String::from_utf8(data).map_err(|_| CalicoError::NotYaml {
        path: shown(),
        reason: msg!("not UTF-8 text"),
    })
}

/// The pod specs of a workload object (a List's items included).
fn pod_specs<'a>(object: &'a Value, out: &mut Vec<(&'a Value, &'a Value)>) {
    let spec = &object["spec"];
    match object["kind"].as_str() {
        Some("Pod") => out.push((object, spec)),
        Some(
            "Deployment"
            | "DaemonSet"
            | "StatefulSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "Job"
            | "PodTemplate",
        ) => {
            let template = if object["kind"].as_str() == Some("PodTemplate") {
                &object["template"]
            } else {
                &spec["template"]
            };
            out.push((object, &template["spec"]));
        }
        Some("CronJob") => out.push((object, &spec["jobTemplate"]["spec"]["template"]["spec"])),
        Some("List") => {
            for item in object["items"].as_array().into_iter().flatten() {
                pod_specs(item, out);
            }
        }
        _ => {}
    }
}

/// Parses the manifest's text (`path` for messages).
pub fn parse(text: &str, path: &str) -> Result<Manifest, CalicoError> {
    // Empty documents are left out by the reader; each document keeps its line for messages.
    let documents: Vec<yaml::Spanned<Value>> =
        yaml::documents(text).map_err(|e| CalicoError::NotYaml {
            path: path.to_string(),
            reason: Message::of(&e),
        })?;
    let mut objects = Vec::new();
    for document in &documents {
        if document.value["kind"].as_str().is_none_or(str::is_empty) {
            return Err(CalicoError::NotAnObject {
                path: path.to_string(),
                line: document.referenced.line(),
            });
        }
        objects.push(&document.value);
    }
    let mut specs = Vec::new();
    for object in &objects {
        pod_specs(object, &mut specs);
    }
    let mut images: Vec<String> = Vec::new();
    for (object, spec) in &specs {
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for container in spec[list].as_array().into_iter().flatten() {
                let image = container["image"]
                    .as_str()
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .ok_or_else(|| CalicoError::NoImage {
                        path: path.to_string(),
                        kind: object["kind"].as_str().unwrap_or_default().to_string(),
                        name: object["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        container: container["name"].as_str().unwrap_or_default().to_string(),
                    })?;
                if !images.iter().any(|i| i == image) {
                    images.push(image.to_string());
                }
            }
        }
    }
    let calico_node = specs.iter().find(|(object, _)| {
        object["kind"].as_str() == Some("DaemonSet")
            && object["metadata"]["name"].as_str() == Some("calico-node")
    });
    let Some((_, node_spec)) = calico_node else {
        return Err(CalicoError::NoCalicoNode {
            path: path.to_string(),
        });
    };
    if images.is_empty() {
        return Err(CalicoError::NoImages {
            path: path.to_string(),
        });
    }
    let mut pool_cidr = None;
    let mut vxlan_mode = None;
    let mut autodetection = None;
    for container in node_spec["containers"].as_array().into_iter().flatten() {
        for variable in container["env"].as_array().into_iter().flatten() {
            let text = variable["value"].as_str().map(|v| v.trim().to_string());
            match variable["name"].as_str() {
                Some("CALICO_IPV4POOL_VXLAN") => vxlan_mode = text,
                Some("IP_AUTODETECTION_METHOD") => autodetection = text,
                _ => {}
            }
            if variable["name"].as_str() != Some("CALICO_IPV4POOL_CIDR") {
                continue;
            }
            let value = match &variable["value"] {
                Value::String(s) => s.trim().to_string(),
                other => yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            };
            let net = Ipv4Net::parse_cluster(&value).map_err(|e| CalicoError::BadPoolCidr {
                path: path.to_string(),
                value: value.clone(),
                reason: Message::of(&e),
            })?;
            pool_cidr = Some(net);
        }
    }
    Ok(Manifest {
        path: path.to_string(),
        text: text.to_string(),
        images,
        pool_cidr,
        vxlan_mode,
        autodetection,
    })
}

/// The registry host of an image reference, as container tools read it (no host part: docker.io).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

fn has_tag(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').is_some_and(|(name, tag)| {
        !name.is_empty()
            && !tag.is_empty()
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    })
}

impl Manifest {
    /// What a rootless cluster of several nodes needs and the manifest does not say (the
    /// manifest is applied as written; a one-node cluster is not affected).
    pub fn rootless_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.vxlan_mode.as_deref() != Some("Always") {
            warnings.push(tr!(
                "WARNING: {path}: calico-node's CALICO_IPV4POOL_VXLAN is {mode}, not Always: between rootless nodes only VXLAN (4789/udp) passes slirp4netns, not IP-in-IP, BGP or direct routes",
                path = self.path,
                mode = self.vxlan_mode.as_deref().unwrap_or("unset")
            ));
        }
        if self.autodetection.as_deref() != Some("kubernetes-internal-ip") {
            warnings.push(tr!(
                "WARNING: {path}: calico-node's IP_AUTODETECTION_METHOD is not kubernetes-internal-ip: it may advertise the slirp4netns address every node's namespace shares instead of the node's own",
                path = self.path
            ));
        }
        warnings
    }

    /// Every image names a tag and lives in `registry` (any registry when `native`: the
    /// administrator chose upstream's images for the whole node).
    pub fn check_registry(&self, registry: &str, native: bool) -> Result<(), CalicoError> {
        for image in &self.images {
            if !has_tag(image) {
                return Err(CalicoError::NoTag {
                    path: self.path.clone(),
                    image: image.clone(),
                });
            }
            if !native && registry_of(image) != registry {
                return Err(CalicoError::ForeignImage {
                    path: self.path.clone(),
                    image: image.clone(),
                    registry: registry.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The cluster's pod network: `--pod-network-cidr` if given (the manifest's pool, if set,
    /// must be the same), else the manifest's pool, else calico's default.
    pub fn pod_network(&self, flag: Option<Ipv4Net>) -> Result<Ipv4Net, CalicoError> {
        match (flag, self.pool_cidr) {
            (Some(flag), Some(pool)) if flag != pool => Err(CalicoError::CidrMismatch {
                path: self.path.clone(),
                pool: pool.to_string(),
                pod: flag.to_string(),
            }),
            (Some(net), _) | (None, Some(net)) => Ok(net),
            (None, None) => Ok(Ipv4Net::parse_cluster(DEFAULT_POD_CIDR).expect("default")),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Shaped as Tigera's calico.yaml: comments, empty documents, CRDs, RBAC, a ConfigMap, the
    /// calico-node DaemonSet with init containers, the kube-controllers Deployment.
    pub const SAMPLE: &str = r#"---
# Source: calico/templates/calico-kube-controllers.yaml
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: calico-kube-controllers
  namespace: kube-system
---
# Source: calico/templates/calico-config.yaml
kind: ConfigMap
apiVersion: v1
metadata:
  name: calico-config
  namespace: kube-system
data:
  calico_backend: "vxlan"
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ippools.crd.projectcalico.org
spec:
  group: crd.projectcalico.org
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        properties:
          containers:
            type: array
---
---
kind: DaemonSet
apiVersion: apps/v1
metadata:
  name: calico-node
  namespace: kube-system
spec:
  template:
    spec:
      hostNetwork: true
      initContainers:
        - name: upgrade-ipam
          image: registry.local/calico/cni:v3.29.1
        - name: install-cni
          image: registry.local/calico/cni:v3.29.1
        - name: "mount-bpffs"
          image: registry.local/calico/node:v3.29.1
      containers:
        - name: calico-node
          image: registry.local/calico/node:v3.29.1
          env:
            - name: CALICO_IPV4POOL_VXLAN
              value: "Always"
            # - name: CALICO_IPV4POOL_CIDR
            #   value: "192.168.0.0/16"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: calico-kube-controllers
  namespace: kube-system
spec:
  template:
    spec:
      containers:
        - name: calico-kube-controllers
          image: registry.local/calico/kube-controllers:v3.29.1
"#;

    fn pool(text: &str, cidr: &str) -> String {
        text.replace(
            "            # - name: CALICO_IPV4POOL_CIDR\n            #   value: \"192.168.0.0/16\"",
            &format!("            - name: CALICO_IPV4POOL_CIDR\n              value: \"{cidr}\""),
        )
    }

    #[test]
    fn images_are_found_in_every_workload_and_container_list() {
        let extra = "---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: j\n            image: registry.local/tools/cron:1\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n  spec:\n    ephemeralContainers:\n    - name: debug\n      image: registry.local/tools/debug:2\n    containers:\n    - name: p\n      image: registry.local/tools/pod:3\n- apiVersion: apps/v1\n  kind: StatefulSet\n  metadata:\n    name: s\n  spec:\n    template:\n      spec:\n        containers:\n        - name: s\n          image: registry.local/tools/sts:4\n";
        let manifest = parse(&format!("{SAMPLE}{extra}"), "/root/calico.yaml").unwrap();
        assert_eq!(
            manifest.images,
            [
                "registry.local/calico/cni:v3.29.1",
                "registry.local/calico/node:v3.29.1",
                "registry.local/calico/kube-controllers:v3.29.1",
                "registry.local/tools/cron:1",
                "registry.local/tools/pod:3",
                "registry.local/tools/debug:2",
                "registry.local/tools/sts:4",
            ]
        );
        // the commented-out pool is not a pool; the CRD's "containers" schema is no container
        assert_eq!(manifest.pool_cidr, None);
        // VXLAN Always, but no IP_AUTODETECTION_METHOD: one warning for several nodes
        let warnings = manifest.rootless_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("IP_AUTODETECTION_METHOD"),
            "{warnings:?}"
        );
        let tuned = SAMPLE.replace(
            "          env:\n",
            "          env:\n            - name: IP_AUTODETECTION_METHOD\n              value: kubernetes-internal-ip\n",
        );
        assert!(parse(&tuned, "m").unwrap().rootless_warnings().is_empty());
        // calico.yaml's default: IP-in-IP
        let ipip = tuned.replace("value: \"Always\"", "value: \"Never\"");
        let warnings = parse(&ipip, "m").unwrap().rootless_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("CALICO_IPV4POOL_VXLAN is Never, not Always"),
            "{warnings:?}"
        );
        assert_eq!(manifest.text, format!("{SAMPLE}{extra}"), "kept as given");
        manifest.check_registry("registry.local", false).unwrap();
    }

    #[test]
    fn images_outside_the_nodes_registry_or_without_a_tag_are_refused_by_name() {
        for (image, expected) in [
            (
                "docker.io/calico/node:v3.29.1",
                "U7S_CALICO_MANIFEST=/root/calico.yaml: image docker.io/calico/node:v3.29.1 is not in the node's registry registry.local",
            ),
            (
                "calico/node:v3.29.1",
                "image calico/node:v3.29.1 is not in the node's registry registry.local",
            ),
            (
                "registry.local:5000/calico/node:v3.29.1",
                "image registry.local:5000/calico/node:v3.29.1 is not in the node's registry",
            ),
            (
                "registry.local/calico/node",
                "image registry.local/calico/node names no tag",
            ),
            (
                "registry.local/calico/node@sha256:0123",
                "image registry.local/calico/node@sha256:0123 names no tag",
            ),
        ] {
            let text = SAMPLE.replace(
                "          image: registry.local/calico/node:v3.29.1\n          env:",
                &format!("          image: {image}\n          env:"),
            );
            let err = parse(&text, "/root/calico.yaml")
                .unwrap()
                .check_registry("registry.local", false)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{image}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        // native images (U7S_REGISTRY set empty): upstream's registries are the node's
        let text = SAMPLE.replace("registry.local/calico/", "docker.io/calico/");
        parse(&text, "c.yaml")
            .unwrap()
            .check_registry("registry.k8s.io", true)
            .unwrap();
        assert_eq!(registry_of("quay.io/tigera/operator:v1"), "quay.io");
        assert_eq!(registry_of("busybox:1"), "docker.io");
        assert_eq!(registry_of("localhost/x:1"), "localhost");
    }

    #[test]
    fn what_is_not_a_calico_manifest_is_refused_with_one_line() {
        for (text, expected) in [
            ("kind: [unclosed", "U7S_CALICO_MANIFEST=/m.yaml: not YAML"),
            (
                "just some text\n",
                "the document at line 1 is not a Kubernetes object",
            ),
            (
                "---\n# empty\n---\nkind: ConfigMap\n---\n\nno: kind\n",
                "the document at line 7 is not a Kubernetes object",
            ),
            ("---\n---\n", "no DaemonSet calico-node"),
            (
                // the operator install: no calico-node of its own
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: tigera-operator\nspec:\n  template:\n    spec:\n      containers:\n      - name: tigera-operator\n        image: quay.io/tigera/operator:v1.36.2\n",
                "no DaemonSet calico-node in it (podsec applies Calico's manifest install, calico.yaml, not the Tigera operator)",
            ),
            (
                "kind: DaemonSet\nmetadata:\n  name: calico-node\nspec:\n  template:\n    spec:\n      containers: []\n",
                "no container image in it",
            ),
            (
                "kind: DaemonSet\nmetadata:\n  name: calico-node\nspec:\n  template:\n    spec:\n      containers:\n      - name: calico-node\n",
                "DaemonSet calico-node: container calico-node has no image",
            ),
        ] {
            let err = parse(text, "/m.yaml").unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.starts_with("U7S_CALICO_MANIFEST=/m.yaml: "), "{err}");
        }
    }

    #[test]
    fn the_pod_network_follows_the_manifest_or_the_flag_and_they_must_agree() {
        let net = |s| Ipv4Net::parse_cluster(s).unwrap();
        let plain = parse(SAMPLE, "m").unwrap();
        assert_eq!(plain.pod_network(None).unwrap(), net("192.168.0.0/16"));
        assert_eq!(
            plain.pod_network(Some(net("10.200.0.0/16"))).unwrap(),
            net("10.200.0.0/16")
        );
        let pooled = parse(&pool(SAMPLE, "10.210.0.0/16"), "m").unwrap();
        assert_eq!(pooled.pool_cidr, Some(net("10.210.0.0/16")));
        assert_eq!(pooled.pod_network(None).unwrap(), net("10.210.0.0/16"));
        assert_eq!(
            pooled.pod_network(Some(net("10.210.0.0/16"))).unwrap(),
            net("10.210.0.0/16")
        );
        let err = pooled
            .pod_network(Some(net("10.200.0.0/16")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "U7S_CALICO_MANIFEST=m: CALICO_IPV4POOL_CIDR 10.210.0.0/16 differs from the pod network 10.200.0.0/16 of --pod-network-cidr; make them agree"
        );
        let err = parse(&pool(SAMPLE, "10.210.0.1/33"), "m")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("U7S_CALICO_MANIFEST=m: CALICO_IPV4POOL_CIDR '10.210.0.1/33': "),
            "{err}"
        );
    }

    #[test]
    fn the_file_is_read_only_when_root_alone_controls_it() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::Uid::effective().is_root() {
            return; // ownership is checked against root: only a root test run can pass it
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("calico.yaml");
        let err = load(&file).unwrap_err();
        assert!(matches!(err, CalicoError::Missing { .. }), "{err}");
        assert!(err.to_string().ends_with("calico.yaml: no such file"));
        std::fs::write(&file, SAMPLE).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = dir.path().join("fifo.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let manifest = load(&file).unwrap();
        assert_eq!(manifest.images.len(), 3);
        let err = load(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // a FIFO does not hold the reader
        let err = load(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = load(&file).unwrap_err().to_string();
        assert!(err.contains("lets others write it"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(1000)), None).unwrap();
        let err = load(&file).unwrap_err().to_string();
        assert!(err.contains("owned by uid 1000, not by root"), "{err}");
    }
}
