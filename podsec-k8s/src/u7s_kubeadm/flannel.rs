//! flannel, the pod network of a podsec cluster: pinned manifests shipped with the package (one
//! per flannel minor, chosen by the flannel tag by number), rendered on typed YAML for the node:
//! the images of the node's registry at the chosen tags, the pod network in `net-conf.json`
//! (upstream kept 10.244.0.0/16 whatever --pod-network-cidr said, §10.2/15), and no install-cni
//! init container: podsec writes the CNI configuration itself, root-owned, so a compromised
//! flannel pod cannot rewrite it.

use podsec_common::yaml;
use serde_json::Value;

use super::network::Ipv4Net;
use super::versions::Tag;

/// A shipped manifest: the flannel minor it serves and the images it was pinned with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    pub minor: (u64, u64),
    pub flannel_tag: &'static str,
    pub cni_plugin_tag: &'static str,
    pub text: &'static str,
}

pub const MANIFESTS: &[Manifest] = &[
    Manifest {
        minor: (0, 22),
        flannel_tag: "v0.22.3",
        cni_plugin_tag: "v1.2.0",
        text: include_str!("../../data/kube-flannel/v0.22.yml"),
    },
    Manifest {
        minor: (0, 23),
        flannel_tag: "v0.23.0",
        cni_plugin_tag: "v1.2.0",
        text: include_str!("../../data/kube-flannel/v0.23.yml"),
    },
    Manifest {
        minor: (0, 24),
        flannel_tag: "v0.24.4",
        cni_plugin_tag: "v1.4.0-flannel1",
        text: include_str!("../../data/kube-flannel/v0.24.yml"),
    },
    Manifest {
        minor: (0, 25),
        flannel_tag: "v0.25.7",
        cni_plugin_tag: "v1.5.1-flannel2",
        text: include_str!("../../data/kube-flannel/v0.25.yml"),
    },
    Manifest {
        minor: (0, 26),
        flannel_tag: "v0.26.7",
        cni_plugin_tag: "v1.7.1-flannel1",
        text: include_str!("../../data/kube-flannel/v0.26.yml"),
    },
];

/// The CNI configuration flannel's pods would install, written by podsec instead.
pub const CONFLIST_NAME: &str = "10-flannel.conflist";
pub const CONFLIST: &str = r#"{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "flannel",
      "delegate": {
        "hairpinMode": true,
        "isDefaultGateway": true
      }
    },
    {
      "type": "portmap",
      "capabilities": {
        "portMappings": true
      }
    }
  ]
}
"#;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
pub enum FlannelError {
    #[error("flannel tag '{0}' is not a version tag (vMAJOR.MINOR.PATCH)")]
    BadTag(String),
    #[error(
        "flannel {tag} has no manifest shipped with podsec (shipped: {shipped}); set U7S_FLANNEL_TAG to one of those minors"
    )]
    NoManifest { tag: String, shipped: String },
    #[error("shipped flannel manifest of {0}: {1}")]
    Broken(String, String),
}

/// The shipped minors, for messages.
pub fn shipped() -> String {
    MANIFESTS
        .iter()
        .map(|m| format!("v{}.{}", m.minor.0, m.minor.1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The manifest for a flannel tag (by its minor, compared as numbers).
pub fn manifest_for(tag: &str) -> Result<&'static Manifest, FlannelError> {
    let parsed = Tag::parse(tag)
        .filter(|t| t.v_prefix && t.numbers.len() == 3)
        .ok_or_else(|| FlannelError::BadTag(tag.to_string()))?;
    MANIFESTS
        .iter()
        .find(|m| (parsed.numbers[0], parsed.numbers[1]) == m.minor)
        .ok_or_else(|| FlannelError::NoManifest {
            tag: tag.to_string(),
            shipped: shipped(),
        })
}

/// Whether a tag has a shipped manifest.
pub fn has_manifest(tag: &Tag) -> bool {
    tag.v_prefix
        && tag.numbers.len() == 3
        && tag.suffix.is_none()
        && MANIFESTS
            .iter()
            .any(|m| (tag.numbers[0], tag.numbers[1]) == m.minor)
}

/// Every node's namespace has the same slirp4netns address (10.0.2.100) on tap0, which flanneld
/// would take as its public address, so every peer's VXLAN traffic would go to itself: flanneld
/// advertises the node's address instead (the pod's IP: flannel runs in the host network, and
/// the node's InternalIP is its advertised address, reached through the published 8472/udp).
/// Its VXLAN packets still leave from tap0's slirp address (`--iface=tap0`), the source
/// slirp4netns forwards.
fn advertise_node_address(flanneld: &mut Value) -> Result<(), &'static str> {
    let args = flanneld
        .get_mut("args")
        .and_then(Value::as_array_mut)
        .ok_or("no args of kube-flannel")?;
    args.retain(|a| {
        !a.as_str()
            .is_some_and(|a| a.starts_with("--public-ip") || a.starts_with("--iface"))
    });
    args.push(Value::String("--iface=tap0".into()));
    args.push(Value::String("--public-ip=$(POD_IP)".into()));
    let env = flanneld
        .get_mut("env")
        .and_then(Value::as_array_mut)
        .ok_or("no env of kube-flannel")?;
    env.retain(|e| e["name"].as_str() != Some("POD_IP"));
    env.push(serde_json::json!({
        "name": "POD_IP",
        "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } },
    }));
    Ok(())
}

/// The manifest for the node: `flannel_image` and `cni_plugin_image` are full references.
pub fn render(
    manifest: &Manifest,
    flannel_image: &str,
    cni_plugin_image: &str,
    pod_network: Ipv4Net,
) -> Result<String, FlannelError> {
    let broken = |what: &str| FlannelError::Broken(manifest.flannel_tag.into(), what.into());
    // Empty documents are left out by the reader.
    let mut documents: Vec<Value> =
        yaml::documents(manifest.text).map_err(|e| broken(&e.to_string()))?;
    let mut found_config = false;
    let mut found_daemonset = false;
    for document in &mut documents {
        match document["kind"].as_str() {
            Some("ConfigMap") => {
                let data = document
                    .get_mut("data")
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| broken("ConfigMap without data"))?;
                let net_conf = data
                    .get("net-conf.json")
                    .and_then(Value::as_str)
                    .ok_or_else(|| broken("no net-conf.json"))?;
                let mut net: serde_json::Value =
                    serde_json::from_str(net_conf).map_err(|e| broken(&e.to_string()))?;
                net["Network"] = serde_json::Value::String(pod_network.to_string());
                let text = serde_json::to_string_pretty(&net).expect("JSON") + "\n";
                data.insert("net-conf.json".into(), Value::String(text));
                data.insert("cni-conf.json".into(), Value::String(CONFLIST.into()));
                found_config = true;
            }
            Some("DaemonSet") => {
                let spec = document
                    .get_mut("spec")
                    .and_then(|s| s.get_mut("template"))
                    .and_then(|t| t.get_mut("spec"))
                    .ok_or_else(|| broken("DaemonSet without pod spec"))?;
                let init = spec
                    .get_mut("initContainers")
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| broken("no initContainers"))?;
                init.retain(|c| c["name"].as_str() != Some("install-cni"));
                let plugin = init
                    .iter_mut()
                    .find(|c| c["name"].as_str() == Some("install-cni-plugin"))
                    .ok_or_else(|| broken("no install-cni-plugin"))?;
                plugin["image"] = Value::String(cni_plugin_image.into());
                let containers = spec
                    .get_mut("containers")
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| broken("no containers"))?;
                let flanneld = containers
                    .iter_mut()
                    .find(|c| c["name"].as_str() == Some("kube-flannel"))
                    .ok_or_else(|| broken("no kube-flannel container"))?;
                flanneld["image"] = Value::String(flannel_image.into());
                advertise_node_address(flanneld).map_err(&broken)?;
                // The `cni` volume served only install-cni.
                if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
                    volumes.retain(|v| v["name"].as_str() != Some("cni"));
                }
                found_daemonset = true;
            }
            _ => {}
        }
    }
    if !found_config || !found_daemonset {
        return Err(broken("no ConfigMap or DaemonSet"));
    }
    let mut out = String::new();
    for document in documents {
        out.push_str("---\n");
        out.push_str(&yaml::to_string(&document).map_err(|e| broken(&e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Ipv4Net {
        Ipv4Net::parse_cluster("10.200.0.0/16").unwrap()
    }

    #[test]
    fn manifests_are_chosen_by_the_minor_as_a_number() {
        assert_eq!(manifest_for("v0.26.7").unwrap().minor, (0, 26));
        assert_eq!(manifest_for("v0.26.1").unwrap().minor, (0, 26));
        assert_eq!(manifest_for("v0.22.0").unwrap().minor, (0, 22));
        // no "0/2/6" or string tricks, and no silent exit 0 for an unshipped version (§10.2/15)
        let err = manifest_for("v0.2.6").unwrap_err();
        assert!(
            err.to_string()
                .contains("shipped: v0.22, v0.23, v0.24, v0.25, v0.26"),
            "{err}"
        );
        assert!(matches!(
            manifest_for("latest"),
            Err(FlannelError::BadTag(_))
        ));
        assert!(has_manifest(&Tag::parse("v0.25.1").unwrap()));
        assert!(!has_manifest(&Tag::parse("v0.27.0").unwrap()));
        assert!(!has_manifest(&Tag::parse("v0.26.7-rc1").unwrap()));
    }

    #[test]
    fn every_shipped_manifest_renders_with_the_node_settings() {
        for manifest in MANIFESTS {
            // each file pins the images its table entry names
            assert!(
                manifest
                    .text
                    .contains(&format!("flannel:{}", manifest.flannel_tag))
            );
            assert!(
                manifest
                    .text
                    .contains(&format!("flannel-cni-plugin:{}", manifest.cni_plugin_tag))
            );
            let text = render(
                manifest,
                "registry.local/c10f/flannel:v0.26.7",
                "registry.local/c10f/flannel-cni-plugin:v1.7.1-flannel1",
                pod(),
            )
            .unwrap();
            let docs: Vec<Value> = yaml::documents(&text).unwrap();
            let config = docs
                .iter()
                .find(|d| d["kind"].as_str() == Some("ConfigMap"))
                .unwrap();
            let net: serde_json::Value =
                serde_json::from_str(config["data"]["net-conf.json"].as_str().unwrap()).unwrap();
            assert_eq!(net["Network"], "10.200.0.0/16");
            assert_eq!(net["Backend"]["Type"], "vxlan");
            let ds = docs
                .iter()
                .find(|d| d["kind"].as_str() == Some("DaemonSet"))
                .unwrap();
            let spec = &ds["spec"]["template"]["spec"];
            let init = spec["initContainers"].as_array().unwrap();
            assert_eq!(init.len(), 1, "install-cni is dropped");
            assert_eq!(
                init[0]["image"].as_str(),
                Some("registry.local/c10f/flannel-cni-plugin:v1.7.1-flannel1")
            );
            assert_eq!(
                spec["containers"][0]["image"].as_str(),
                Some("registry.local/c10f/flannel:v0.26.7")
            );
            // Each node advertises its own address, not the slirp address all nodes share.
            let flanneld = &spec["containers"][0];
            let args: Vec<&str> = flanneld["args"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(args.contains(&"--public-ip=$(POD_IP)"), "{args:?}");
            assert!(args.contains(&"--iface=tap0"), "{args:?}");
            let pod_ip = flanneld["env"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"].as_str() == Some("POD_IP"))
                .expect("POD_IP in the environment");
            assert_eq!(
                pod_ip["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
                Some("status.podIP")
            );
            assert!(!text.contains("docker.io/"), "no upstream image left");
            assert!(
                !text.contains("/etc/cni/net.d"),
                "no CNI config volume left"
            );
            // never a static pod: a list of API objects for kubectl apply
            assert!(docs.iter().all(|d| d["kind"].as_str() != Some("Pod")));
            // The DaemonSet keeps the key order of the shipped manifest (a readable diff):
            // its pod spec's keys, in the text, come in the same order.
            let pod_spec_keys = |text: &str| -> Vec<String> {
                let daemonset = &text[text.find("kind: DaemonSet").unwrap()..];
                daemonset
                    .lines()
                    // keys only: the list items podsec drops would differ
                    .filter(|l| l.starts_with("      ") && !l.starts_with("       "))
                    .filter(|l| !l.trim_start().starts_with('-'))
                    .filter_map(|l| l.trim().split(':').next().map(str::to_string))
                    .collect()
            };
            assert_eq!(pod_spec_keys(&text), pod_spec_keys(manifest.text));
        }
    }
}
