//! API-server auditing on control-plane nodes: the shipped audit policy and upstream's
//! `tuneAudit`, done on typed YAML: the kube-apiserver static-pod manifest kubeadm wrote gets the
//! audit flags, the volume mount and the hostPath volume of /etc/kubernetes/audit. Idempotent: a
//! manifest that has them is left byte-identical; flags of ours with other values are replaced.
//! Fields the model does not name are kept as they are.

use podsec_common::i18n::Message;
use podsec_common::yaml;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The policy (root-owned in /etc/kubernetes/audit; see the file for what differs from upstream).
pub const POLICY: &str = include_str!("../../data/audit/policy.yaml");
pub use podsec_common::audit::{AUDIT_DIR, LOG_PATH, POLICY_PATH};
pub const APISERVER_MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
const VOLUME: &str = "audit";

/// The kube-apiserver flags, as upstream set them.
pub fn audit_flags() -> Vec<(&'static str, String)> {
    vec![
        ("--audit-policy-file", POLICY_PATH.to_string()),
        ("--audit-log-path", LOG_PATH.to_string()),
        ("--audit-log-maxsize", "500".to_string()),
        ("--audit-log-maxbackup", "3".to_string()),
    ]
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum AuditError {
    #[error("kube-apiserver manifest: {0}")]
    Yaml(Message),
    #[error("kube-apiserver manifest has no container named kube-apiserver")]
    NoContainer,
    #[error("kube-apiserver manifest already mounts {path} as volume '{name}' at another path")]
    Conflict { name: String, path: Message },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StaticPod {
    api_version: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
    spec: PodSpec,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<Volume>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    volume_mounts: Vec<VolumeMount>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read_only: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host_path: Option<HostPath>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct HostPath {
    path: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

/// The patched manifest, or `None` when it already audits exactly as wanted.
pub fn patch_manifest(text: &str) -> Result<Option<String>, AuditError> {
    let mut pod: StaticPod = yaml::from_str(text).map_err(|e| AuditError::Yaml(Message::of(&e)))?;
    let mut changed = false;

    // The volume: one hostPath volume for the directory, whatever kubeadm or an admin named it.
    let volume_name = match pod.spec.volumes.iter().find(|v| {
        v.host_path
            .as_ref()
            .is_some_and(|h| h.path.trim_end_matches('/') == AUDIT_DIR)
    }) {
        Some(v) => v.name.clone(),
        None => {
            if pod.spec.volumes.iter().any(|v| v.name == VOLUME) {
                return Err(AuditError::Conflict {
                    name: VOLUME.into(),
                    path: podsec_common::msg!("another directory"),
                });
            }
            pod.spec.volumes.push(Volume {
                name: VOLUME.into(),
                host_path: Some(HostPath {
                    path: AUDIT_DIR.into(),
                    kind: Some("DirectoryOrCreate".into()),
                }),
                rest: Map::new(),
            });
            changed = true;
            VOLUME.to_string()
        }
    };

    let container = pod
        .spec
        .containers
        .iter_mut()
        .find(|c| c.name == "kube-apiserver")
        .ok_or(AuditError::NoContainer)?;
    match container
        .volume_mounts
        .iter_mut()
        .find(|m| m.name == volume_name)
    {
        Some(mount) if mount.mount_path.trim_end_matches('/') == AUDIT_DIR => {
            // The log is written there: the mount must not be read-only.
            if mount.read_only == Some(true) {
                mount.read_only = None;
                changed = true;
            }
        }
        Some(_) => {
            return Err(AuditError::Conflict {
                name: volume_name,
                path: Message::verbatim(AUDIT_DIR),
            });
        }
        None => {
            container.volume_mounts.push(VolumeMount {
                name: volume_name,
                mount_path: AUDIT_DIR.into(),
                read_only: None,
                rest: Map::new(),
            });
            changed = true;
        }
    }

    for (flag, value) in audit_flags() {
        let wanted = format!("{flag}={value}");
        let prefix = format!("{flag}=");
        let existing: Vec<usize> = container
            .command
            .iter()
            .enumerate()
            .filter(|(_, a)| a.starts_with(&prefix) || a.as_str() == flag)
            .map(|(i, _)| i)
            .collect();
        if existing.len() == 1 && container.command[existing[0]] == wanted {
            continue;
        }
        // Replace every other spelling (also `--flag value` pairs would be two words: kubeadm
        // writes `--flag=value` only).
        for i in existing.into_iter().rev() {
            container.command.remove(i);
        }
        container.command.push(wanted);
        changed = true;
    }

    if !changed {
        return Ok(None);
    }
    yaml::to_string(&pod)
        .map(Some)
        .map_err(|e| AuditError::Yaml(Message::of(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kube-apiserver manifest as kubeadm 1.33 writes it (abridged to the parts that matter,
    /// with fields the model does not know, which must survive).
    pub const MANIFEST: &str = "\
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 192.0.2.20:6443
  labels:
    component: kube-apiserver
    tier: control-plane
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=192.0.2.20
    - --etcd-servers=https://127.0.0.1:2379
    - --secure-port=6443
    image: registry.local/c10f/kube-apiserver:v1.33.13
    imagePullPolicy: IfNotPresent
    livenessProbe:
      failureThreshold: 8
      httpGet:
        host: 192.0.2.20
        path: /livez
        port: probe-port
        scheme: HTTPS
    name: kube-apiserver
    volumeMounts:
    - mountPath: /etc/kubernetes/pki
      name: k8s-certs
      readOnly: true
  hostNetwork: true
  priority: 2000001000
  volumes:
  - hostPath:
      path: /etc/kubernetes/pki
      type: DirectoryOrCreate
    name: k8s-certs
status: {}
";

    #[test]
    fn golden_audit_patch() {
        let patched = patch_manifest(MANIFEST).unwrap().expect("changed");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/kube-apiserver-audit-patched.yaml");
        if std::env::var_os("PODSEC_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &patched).unwrap();
        }
        assert_eq!(
            patched,
            std::fs::read_to_string(&path).expect("golden file (PODSEC_UPDATE_GOLDEN=1)")
        );
        // Idempotent: a second run changes nothing.
        assert_eq!(patch_manifest(&patched).unwrap(), None);
    }

    #[test]
    fn patch_keeps_unknown_fields_and_adds_exactly_once() {
        let patched = patch_manifest(MANIFEST).unwrap().unwrap();
        let pod: Value = yaml::from_str(&patched).unwrap();
        let container = &pod["spec"]["containers"][0];
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"].as_str(),
            Some("/livez")
        );
        assert_eq!(pod["spec"]["priority"].as_u64(), Some(2000001000));
        assert!(pod["status"].is_object());
        let command: Vec<&str> = container["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(command[0], "kube-apiserver");
        for flag in [
            "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
            "--audit-log-path=/etc/kubernetes/audit/audit.log",
            "--audit-log-maxsize=500",
            "--audit-log-maxbackup=3",
        ] {
            assert_eq!(command.iter().filter(|a| **a == flag).count(), 1, "{flag}");
        }
        assert_eq!(
            pod["spec"]["volumes"][1]["hostPath"]["path"].as_str(),
            Some(AUDIT_DIR)
        );
        assert_eq!(
            container["volumeMounts"][1]["mountPath"].as_str(),
            Some(AUDIT_DIR)
        );
    }

    #[test]
    fn other_values_of_our_flags_are_replaced_and_read_only_mounts_fixed() {
        let tampered = MANIFEST.replace(
            "    - --secure-port=6443\n",
            "    - --secure-port=6443\n    - --audit-log-maxbackup=0\n    - --audit-policy-file=/tmp/weak.yaml\n",
        );
        let patched = patch_manifest(&tampered).unwrap().unwrap();
        assert!(!patched.contains("/tmp/weak.yaml") && !patched.contains("maxbackup=0"));
        let read_only = patched.replace(
            "    - name: audit\n      mountPath: /etc/kubernetes/audit\n",
            "    - name: audit\n      mountPath: /etc/kubernetes/audit\n      readOnly: true\n",
        );
        assert_ne!(read_only, patched, "test setup");
        let fixed = patch_manifest(&read_only).unwrap().unwrap();
        assert_eq!(fixed, patched);
    }

    #[test]
    fn broken_manifests_are_errors() {
        assert!(matches!(
            patch_manifest("kind: ["),
            Err(AuditError::Yaml(_))
        ));
        let other = MANIFEST.replace(
            "    name: kube-apiserver\n    volumeMounts",
            "    name: other\n    volumeMounts",
        );
        assert!(matches!(
            patch_manifest(&other),
            Err(AuditError::NoContainer)
        ));
    }

    #[test]
    fn the_policy_audits_administrators() {
        let policy: Value = yaml::from_str(POLICY).unwrap();
        assert_eq!(policy["kind"].as_str(), Some("Policy"));
        // Upstream's policy logged nothing for system:masters (§10.1 defect 5).
        let rules = policy["rules"].as_array().unwrap();
        for rule in rules {
            let groups = rule["userGroups"].as_array().cloned().unwrap_or_default();
            assert!(!groups.iter().any(|g| g.as_str() == Some("system:masters")));
        }
        let pods = rules
            .iter()
            .find(|r| r["resources"][0]["resources"][0].as_str() == Some("pods"))
            .unwrap();
        // verbs belong to the rule (upstream nested them in the resource group, where they mean
        // nothing)
        assert_eq!(pods["verbs"].as_array().unwrap().len(), 4);
        assert_eq!(rules.last().unwrap()["level"].as_str(), Some("Metadata"));
    }
}
