//! The kubeadm configuration of a rootless node, built from typed structs (upstream spliced
//! values into yq programs, §10.1/3) in the API version the chosen Kubernetes expects:
//! `kubeadm.k8s.io/v1beta3` up to 1.30, `v1beta4` from 1.31 (where extraArgs became lists of
//! name/value pairs and the timeouts moved into a `timeouts` block).
//!
//! - init: InitConfiguration, ClusterConfiguration (etcd data in /var/lib/podsec/u7s/etcd, the
//!   rootless extraArgs), KubeletConfiguration, KubeProxyConfiguration (conntrack 0: kube-proxy
//!   cannot write the conntrack sysctls from a user namespace);
//! - join (worker or control plane): JoinConfiguration only. kubeadm join takes the cluster's
//!   ClusterConfiguration and component configurations from the cluster's ConfigMaps and ignores
//!   such documents in the join file.

use std::net::Ipv4Addr;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use super::flags::CRI_SOCKET;
use super::network::Ipv4Net;
use super::versions::{KubeVersion, KubeadmApi};

/// Where etcd keeps its data on a rootless control-plane node (owned by u7s-admin).
pub const ETCD_DATA_DIR: &str = "/var/lib/podsec/u7s/etcd";
/// How long kubeadm waits for the control plane and for discovery, as upstream configured it.
pub const CONTROL_PLANE_TIMEOUT: &str = "4m0s";
pub const DISCOVERY_TIMEOUT: &str = "5m0s";
const BOOTSTRAP_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// What the node becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `kubeadm init`: the first control-plane node.
    Init,
    /// `kubeadm join` of a worker.
    Worker,
    /// `kubeadm join --control-plane`.
    ControlPlane,
}

impl Role {
    pub fn is_control_plane(&self) -> bool {
        matches!(self, Role::Init | Role::ControlPlane)
    }
}

/// How a joining node finds and trusts the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    Token {
        endpoint: String,
        token: String,
        ca_cert_hashes: Vec<String>,
        unsafe_skip_ca_verification: bool,
    },
    File {
        kubeconfig: String,
    },
}

/// Everything the configuration is made of; the plan fills it from flags, environment and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInput {
    pub role: Role,
    pub version: KubeVersion,
    pub node_name: String,
    pub advertise_address: Ipv4Addr,
    pub bind_port: u16,
    pub skip_phases: Vec<String>,
    pub patches: Option<String>,
    pub init: Option<InitInput>,
    pub join: Option<JoinInput>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInput {
    /// `registry.local/c10f`, `registry.k8s.io`: every image's registry and path.
    pub image_repository: String,
    pub control_plane_endpoint: String,
    pub pod_subnet: Ipv4Net,
    pub service_subnet: Ipv4Net,
    pub dns_domain: String,
    pub cert_extra_sans: Vec<String>,
    pub feature_gates: Vec<(String, bool)>,
    pub token: Option<String>,
    pub token_ttl: Option<String>,
    pub certificate_key: Option<String>,
    /// A substitute etcd tag (U7S_SETAVAILABLEIMAGES, same minor), else kubeadm's own.
    pub etcd_image_tag: Option<String>,
    /// A substitute CoreDNS tag (U7S_SETAVAILABLEIMAGES, same minor), else kubeadm's own.
    pub dns_image_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinInput {
    pub discovery: Discovery,
    pub tls_bootstrap_token: Option<String>,
    pub certificate_key: Option<String>,
}

/// `extraArgs`: a map in v1beta3, a list of `{name, value}` in v1beta4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraArgs {
    api: KubeadmApi,
    args: Vec<(String, String)>,
}

impl ExtraArgs {
    fn new(api: KubeadmApi, args: &[(&str, String)]) -> ExtraArgs {
        ExtraArgs {
            api,
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

impl Serialize for ExtraArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Arg<'a> {
            name: &'a str,
            value: &'a str,
        }
        match self.api {
            KubeadmApi::V1beta3 => {
                let mut map = serializer.serialize_map(Some(self.args.len()))?;
                for (k, v) in &self.args {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            KubeadmApi::V1beta4 => {
                let mut seq = serializer.serialize_seq(Some(self.args.len()))?;
                for (name, value) in &self.args {
                    seq.serialize_element(&Arg { name, value })?;
                }
                seq.end()
            }
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InitConfiguration {
    api_version: &'static str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bootstrap_tokens: Vec<BootstrapToken>,
    node_registration: NodeRegistration,
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: ApiEndpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_key: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skip_phases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patches: Option<Patches>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<Timeouts>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BootstrapToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
    groups: Vec<&'static str>,
    usages: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeRegistration {
    name: String,
    cri_socket: &'static str,
    image_pull_policy: &'static str,
    /// Always written: `null` gives control-plane nodes kubeadm's default taint and workers none.
    taints: Option<Vec<()>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiEndpoint {
    advertise_address: String,
    bind_port: u16,
}

#[derive(Debug, Serialize)]
struct Patches {
    directory: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Timeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    control_plane_component_health_check: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterConfiguration {
    api_version: &'static str,
    kind: &'static str,
    cluster_name: &'static str,
    kubernetes_version: String,
    control_plane_endpoint: String,
    image_repository: String,
    etcd: Etcd,
    networking: Networking,
    api_server: ApiServer,
    controller_manager: Component,
    scheduler: Component,
    dns: Dns,
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "gates")]
    feature_gates: Vec<(String, bool)>,
}

fn gates<S: Serializer>(gates: &[(String, bool)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(gates.len()))?;
    for (name, state) in gates {
        map.serialize_entry(name, state)?;
    }
    map.end()
}

#[derive(Debug, Serialize)]
struct Etcd {
    local: LocalEtcd,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LocalEtcd {
    image_repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_tag: Option<String>,
    data_dir: &'static str,
    #[serde(skip_serializing_if = "ExtraArgs::is_empty")]
    extra_args: ExtraArgs,
    #[serde(rename = "serverCertSANs")]
    server_cert_sans: Vec<String>,
    #[serde(rename = "peerCertSANs")]
    peer_cert_sans: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Networking {
    service_subnet: String,
    pod_subnet: String,
    dns_domain: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiServer {
    #[serde(rename = "certSANs")]
    cert_sans: Vec<String>,
    #[serde(skip_serializing_if = "ExtraArgs::is_empty")]
    extra_args: ExtraArgs,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_for_control_plane: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    #[serde(skip_serializing_if = "ExtraArgs::is_empty")]
    extra_args: ExtraArgs,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Dns {
    #[serde(skip_serializing_if = "Option::is_none")]
    image_tag: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeletConfiguration {
    api_version: &'static str,
    kind: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeProxyConfiguration {
    api_version: &'static str,
    kind: &'static str,
    mode: &'static str,
    client_connection: ClientConnection,
    conntrack: Conntrack,
}

#[derive(Debug, Serialize)]
struct ClientConnection {
    kubeconfig: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Conntrack {
    max_per_core: u32,
    tcp_established_timeout: &'static str,
    tcp_close_wait_timeout: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinConfiguration {
    api_version: &'static str,
    kind: &'static str,
    node_registration: NodeRegistration,
    discovery: JoinDiscovery,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_plane: Option<JoinControlPlane>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skip_phases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patches: Option<Patches>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<Timeouts>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinDiscovery {
    #[serde(skip_serializing_if = "Option::is_none")]
    bootstrap_token: Option<BootstrapTokenDiscovery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<FileDiscovery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_bootstrap_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BootstrapTokenDiscovery {
    token: String,
    api_server_endpoint: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ca_cert_hashes: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[serde(rename = "unsafeSkipCAVerification")]
    unsafe_skip_ca_verification: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileDiscovery {
    kube_config_path: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinControlPlane {
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: ApiEndpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the {role:?} configuration needs its {what} settings")]
    Missing { role: Role, what: &'static str },
    #[error("cannot render the kubeadm configuration: {0}")]
    Yaml(String),
}

fn node_registration(input: &NodeInput) -> NodeRegistration {
    NodeRegistration {
        name: input.node_name.clone(),
        cri_socket: CRI_SOCKET,
        image_pull_policy: "IfNotPresent",
        taints: None,
    }
}

fn patches(input: &NodeInput) -> Option<Patches> {
    input.patches.clone().map(|directory| Patches { directory })
}

fn yaml(value: &impl Serialize) -> Result<String, ConfigError> {
    serde_norway::to_string(value).map_err(|e| ConfigError::Yaml(e.to_string()))
}

/// The rootless extraArgs of the control-plane components (upstream's templates, without etcd's
/// `enable-v2`: nothing podsec deploys speaks the v2 API, etcd 3.5 deprecated and 3.6 removed it).
fn cluster_configuration(
    input: &NodeInput,
    init: &InitInput,
    api: KubeadmApi,
) -> ClusterConfiguration {
    let adv = input.advertise_address.to_string();
    let mut cert_sans = vec!["127.0.0.1".to_string()];
    for san in &init.cert_extra_sans {
        if !cert_sans.contains(san) {
            cert_sans.push(san.clone());
        }
    }
    ClusterConfiguration {
        api_version: api.api_version(),
        kind: "ClusterConfiguration",
        cluster_name: "kubernetes",
        kubernetes_version: input.version.bare(),
        control_plane_endpoint: init.control_plane_endpoint.clone(),
        image_repository: init.image_repository.clone(),
        etcd: Etcd {
            local: LocalEtcd {
                image_repository: init.image_repository.clone(),
                image_tag: init.etcd_image_tag.clone(),
                data_dir: ETCD_DATA_DIR,
                extra_args: ExtraArgs::new(
                    api,
                    &[("listen-peer-urls", "https://0.0.0.0:2380".to_string())],
                ),
                server_cert_sans: vec![adv.clone(), "127.0.0.1".into()],
                peer_cert_sans: vec![adv.clone()],
            },
        },
        networking: Networking {
            service_subnet: init.service_subnet.to_string(),
            pod_subnet: init.pod_subnet.to_string(),
            dns_domain: init.dns_domain.clone(),
        },
        api_server: ApiServer {
            cert_sans,
            // No `advertise-address` (upstream's template had it): kubeadm takes each API
            // server's from its node's localAPIEndpoint, while the ClusterConfiguration is
            // shared, so a control plane that joins would advertise the first node's address.
            extra_args: ExtraArgs::new(
                api,
                &[("etcd-servers", "https://127.0.0.1:2379".to_string())],
            ),
            timeout_for_control_plane: (api == KubeadmApi::V1beta3)
                .then_some(CONTROL_PLANE_TIMEOUT),
        },
        controller_manager: Component {
            extra_args: ExtraArgs::new(
                api,
                &[
                    ("allocate-node-cidrs", "true".to_string()),
                    ("cluster-cidr", init.pod_subnet.to_string()),
                    ("service-cluster-ip-range", init.service_subnet.to_string()),
                ],
            ),
        },
        scheduler: Component {
            extra_args: ExtraArgs::new(api, &[]),
        },
        dns: Dns {
            image_tag: init.dns_image_tag.clone(),
        },
        feature_gates: init.feature_gates.clone(),
    }
}

/// The configuration file's text: YAML documents separated by `---`.
pub fn render(input: &NodeInput) -> Result<String, ConfigError> {
    let api = input.version.minor_line().kubeadm_api();
    let mut documents = Vec::new();
    match input.role {
        Role::Init => {
            let init = input.init.as_ref().ok_or(ConfigError::Missing {
                role: input.role,
                what: "init",
            })?;
            let bootstrap_tokens = if init.token.is_some() || init.token_ttl.is_some() {
                vec![BootstrapToken {
                    token: init.token.clone(),
                    ttl: init.token_ttl.clone(),
                    groups: vec![BOOTSTRAP_GROUP],
                    usages: vec!["signing", "authentication"],
                }]
            } else {
                Vec::new()
            };
            documents.push(yaml(&InitConfiguration {
                api_version: api.api_version(),
                kind: "InitConfiguration",
                bootstrap_tokens,
                node_registration: node_registration(input),
                local_api_endpoint: ApiEndpoint {
                    advertise_address: input.advertise_address.to_string(),
                    bind_port: input.bind_port,
                },
                certificate_key: init.certificate_key.clone(),
                skip_phases: input.skip_phases.clone(),
                patches: patches(input),
                timeouts: (api == KubeadmApi::V1beta4).then_some(Timeouts {
                    control_plane_component_health_check: Some(CONTROL_PLANE_TIMEOUT),
                    discovery: None,
                }),
            })?);
            documents.push(yaml(&cluster_configuration(input, init, api))?);
            documents.push(yaml(&KubeletConfiguration {
                api_version: "kubelet.config.k8s.io/v1beta1",
                kind: "KubeletConfiguration",
            })?);
            documents.push(yaml(&KubeProxyConfiguration {
                api_version: "kubeproxy.config.k8s.io/v1alpha1",
                kind: "KubeProxyConfiguration",
                mode: "iptables",
                client_connection: ClientConnection {
                    kubeconfig: "/var/lib/kube-proxy/kubeconfig.conf",
                },
                conntrack: Conntrack {
                    max_per_core: 0,
                    tcp_established_timeout: "0s",
                    tcp_close_wait_timeout: "0s",
                },
            })?);
        }
        Role::Worker | Role::ControlPlane => {
            let join = input.join.as_ref().ok_or(ConfigError::Missing {
                role: input.role,
                what: "join",
            })?;
            let (bootstrap_token, file) = match &join.discovery {
                Discovery::Token {
                    endpoint,
                    token,
                    ca_cert_hashes,
                    unsafe_skip_ca_verification,
                } => (
                    Some(BootstrapTokenDiscovery {
                        token: token.clone(),
                        api_server_endpoint: endpoint.clone(),
                        ca_cert_hashes: ca_cert_hashes.clone(),
                        unsafe_skip_ca_verification: *unsafe_skip_ca_verification,
                    }),
                    None,
                ),
                Discovery::File { kubeconfig } => (
                    None,
                    Some(FileDiscovery {
                        kube_config_path: kubeconfig.clone(),
                    }),
                ),
            };
            let control_plane = (input.role == Role::ControlPlane).then(|| JoinControlPlane {
                local_api_endpoint: ApiEndpoint {
                    advertise_address: input.advertise_address.to_string(),
                    bind_port: input.bind_port,
                },
                certificate_key: join.certificate_key.clone(),
            });
            documents.push(yaml(&JoinConfiguration {
                api_version: api.api_version(),
                kind: "JoinConfiguration",
                node_registration: node_registration(input),
                discovery: JoinDiscovery {
                    bootstrap_token,
                    file,
                    tls_bootstrap_token: join.tls_bootstrap_token.clone(),
                    timeout: (api == KubeadmApi::V1beta3).then_some(DISCOVERY_TIMEOUT),
                },
                control_plane,
                skip_phases: input.skip_phases.clone(),
                patches: patches(input),
                timeouts: (api == KubeadmApi::V1beta4).then(|| Timeouts {
                    control_plane_component_health_check: (input.role == Role::ControlPlane)
                        .then_some(CONTROL_PLANE_TIMEOUT),
                    discovery: Some(DISCOVERY_TIMEOUT),
                }),
            })?);
        }
    }
    Ok(documents.join("---\n"))
}

#[cfg(test)]
pub mod tests {
    //! Golden files of the generated configurations (tests/golden/kubeadm/<minor>-<role>.yaml,
    //! written by `PODSEC_UPDATE_GOLDEN=1 cargo test`) for 1.26, 1.30 and the newest minor, and
    //! the checks that matter whatever the golden files say. The real kubeadm of the newest
    //! minor validates its files in `make test`, kubeadm 1.30 in `make test-k8s-matrix`; the
    //! 1.26 files are regression-only (no kubeadm 1.26 can be built: docs/testing.md).
    use super::*;
    use crate::u7s_kubeadm::versions::NEWEST_MINOR;

    pub const TOKEN: &str = "abcdef.0123456789abcdef";
    pub const HASH: &str =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    pub const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// The inputs of the golden files (also used by the validation against the real kubeadm).
    pub fn sample(role: Role, version: KubeVersion) -> NodeInput {
        let net = |s: &str| Ipv4Net::parse_cluster(s).unwrap();
        NodeInput {
            role,
            version,
            node_name: "node1".into(),
            advertise_address: Ipv4Addr::new(192, 0, 2, 20),
            bind_port: 6443,
            skip_phases: Vec::new(),
            patches: None,
            init: (role == Role::Init).then(|| InitInput {
                image_repository: "registry.local/c10f".into(),
                control_plane_endpoint: "192.0.2.20:6443".into(),
                pod_subnet: net("10.244.0.0/16"),
                service_subnet: net("10.96.0.0/12"),
                dns_domain: "cluster.local".into(),
                cert_extra_sans: Vec::new(),
                feature_gates: Vec::new(),
                token: None,
                token_ttl: None,
                certificate_key: None,
                etcd_image_tag: None,
                dns_image_tag: None,
            }),
            join: (role != Role::Init).then(|| JoinInput {
                discovery: Discovery::Token {
                    endpoint: "192.0.2.10:6443".into(),
                    token: TOKEN.into(),
                    ca_cert_hashes: vec![HASH.into()],
                    unsafe_skip_ca_verification: false,
                },
                tls_bootstrap_token: None,
                certificate_key: (role == Role::ControlPlane).then(|| KEY.into()),
            }),
        }
    }

    pub fn golden_versions() -> [KubeVersion; 3] {
        let v = |minor, patch| KubeVersion {
            major: 1,
            minor,
            patch,
        };
        [v(26, 15), v(30, 14), v(NEWEST_MINOR, 13)]
    }

    pub fn golden_name(role: Role, version: KubeVersion) -> String {
        let role = match role {
            Role::Init => "init",
            Role::Worker => "join-worker",
            Role::ControlPlane => "join-control-plane",
        };
        format!("1.{}-{role}.yaml", version.minor)
    }

    fn golden_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/kubeadm")
    }

    fn check_golden(name: &str, actual: &str) {
        let path = golden_dir().join(name);
        if std::env::var_os("PODSEC_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (PODSEC_UPDATE_GOLDEN=1 writes it)", path.display())
        });
        assert_eq!(actual, expected, "{name} differs from its golden file");
    }

    #[test]
    fn golden_configurations() {
        for version in golden_versions() {
            for role in [Role::Init, Role::Worker, Role::ControlPlane] {
                let text = render(&sample(role, version)).unwrap();
                check_golden(&golden_name(role, version), &text);
            }
        }
    }

    fn documents(text: &str) -> Vec<serde_norway::Value> {
        text.split("---\n")
            .map(|d| serde_norway::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn api_version_follows_the_kubernetes_minor() {
        for (version, api, list_args) in [
            (golden_versions()[0], "kubeadm.k8s.io/v1beta3", false),
            (golden_versions()[1], "kubeadm.k8s.io/v1beta3", false),
            (golden_versions()[2], "kubeadm.k8s.io/v1beta4", true),
        ] {
            let docs = documents(&render(&sample(Role::Init, version)).unwrap());
            assert_eq!(docs[0]["apiVersion"].as_str(), Some(api));
            assert_eq!(docs[1]["apiVersion"].as_str(), Some(api));
            let args = &docs[1]["controllerManager"]["extraArgs"];
            assert_eq!(args.is_sequence(), list_args, "{version}: {args:?}");
            if list_args {
                assert_eq!(args[1]["name"].as_str(), Some("cluster-cidr"));
                assert_eq!(args[1]["value"].as_str(), Some("10.244.0.0/16"));
                assert_eq!(
                    docs[0]["timeouts"]["controlPlaneComponentHealthCheck"].as_str(),
                    Some("4m0s")
                );
                assert!(docs[1]["apiServer"]["timeoutForControlPlane"].is_null());
            } else {
                assert_eq!(args["cluster-cidr"].as_str(), Some("10.244.0.0/16"));
                assert_eq!(
                    docs[1]["apiServer"]["timeoutForControlPlane"].as_str(),
                    Some("4m0s")
                );
            }
        }
    }

    #[test]
    fn rootless_settings_in_every_version() {
        for version in golden_versions() {
            let text = render(&sample(Role::Init, version)).unwrap();
            let docs = documents(&text);
            assert_eq!(
                docs[1]["etcd"]["local"]["dataDir"].as_str(),
                Some(ETCD_DATA_DIR)
            );
            assert_eq!(docs[3]["conntrack"]["maxPerCore"].as_u64(), Some(0));
            assert_eq!(
                docs[0]["nodeRegistration"]["criSocket"].as_str(),
                Some(CRI_SOCKET)
            );
            assert!(docs[0]["nodeRegistration"]["taints"].is_null());
            // §10.2 defect 23: no etcd v2 API flag, whatever the version.
            assert!(!text.contains("enable-v2"), "{text}");
            // The ClusterConfiguration is every control plane's: no node's own API address.
            let api_server = serde_norway::to_string(&docs[1]["apiServer"]).unwrap();
            assert!(!api_server.contains("advertise-address"), "{api_server}");
        }
    }

    #[test]
    fn honoured_flags_reach_the_configuration() {
        let version = golden_versions()[2];
        let mut input = sample(Role::Init, version);
        input.bind_port = 7443;
        input.skip_phases = vec!["addon/kube-proxy".into()];
        input.patches = Some("/etc/podsec/patches".into());
        let init = input.init.as_mut().unwrap();
        init.service_subnet = Ipv4Net::parse_cluster("10.112.0.0/12").unwrap();
        init.token = Some(TOKEN.into());
        init.token_ttl = Some("2h".into());
        init.certificate_key = Some(KEY.into());
        init.cert_extra_sans = vec!["api.example.org".into()];
        init.feature_gates = vec![("PublicKeysECDSA".into(), true)];
        init.dns_domain = "corp.internal".into();
        init.etcd_image_tag = Some("3.5.16-0".into());
        let docs = documents(&render(&input).unwrap());
        assert_eq!(docs[0]["localAPIEndpoint"]["bindPort"].as_u64(), Some(7443));
        assert_eq!(docs[0]["bootstrapTokens"][0]["token"].as_str(), Some(TOKEN));
        assert_eq!(docs[0]["bootstrapTokens"][0]["ttl"].as_str(), Some("2h"));
        assert_eq!(docs[0]["certificateKey"].as_str(), Some(KEY));
        assert_eq!(docs[0]["skipPhases"][0].as_str(), Some("addon/kube-proxy"));
        assert_eq!(
            docs[0]["patches"]["directory"].as_str(),
            Some("/etc/podsec/patches")
        );
        assert_eq!(
            docs[1]["networking"]["serviceSubnet"].as_str(),
            Some("10.112.0.0/12")
        );
        assert_eq!(
            docs[1]["networking"]["dnsDomain"].as_str(),
            Some("corp.internal")
        );
        assert_eq!(
            docs[1]["apiServer"]["certSANs"][1].as_str(),
            Some("api.example.org")
        );
        assert_eq!(
            docs[1]["featureGates"]["PublicKeysECDSA"].as_bool(),
            Some(true)
        );
        assert_eq!(
            docs[1]["etcd"]["local"]["imageTag"].as_str(),
            Some("3.5.16-0")
        );
        assert_eq!(
            docs[1]["controllerManager"]["extraArgs"][2]["value"].as_str(),
            Some("10.112.0.0/12")
        );
    }

    #[test]
    fn joins_carry_discovery_and_control_plane() {
        let version = golden_versions()[1];
        let docs = documents(&render(&sample(Role::ControlPlane, version)).unwrap());
        assert_eq!(docs.len(), 1, "join files hold the JoinConfiguration only");
        let discovery = &docs[0]["discovery"]["bootstrapToken"];
        assert_eq!(
            discovery["apiServerEndpoint"].as_str(),
            Some("192.0.2.10:6443")
        );
        assert_eq!(discovery["caCertHashes"][0].as_str(), Some(HASH));
        assert_eq!(
            docs[0]["controlPlane"]["certificateKey"].as_str(),
            Some(KEY)
        );
        assert_eq!(docs[0]["discovery"]["timeout"].as_str(), Some("5m0s"));
        let worker = documents(&render(&sample(Role::Worker, version)).unwrap());
        assert!(worker[0]["controlPlane"].is_null());
        let mut file = sample(Role::Worker, golden_versions()[2]);
        file.join.as_mut().unwrap().discovery = Discovery::File {
            kubeconfig: "/root/discovery.conf".into(),
        };
        let docs = documents(&render(&file).unwrap());
        assert_eq!(
            docs[0]["discovery"]["file"]["kubeConfigPath"].as_str(),
            Some("/root/discovery.conf")
        );
        assert_eq!(docs[0]["timeouts"]["discovery"].as_str(), Some("5m0s"));
        let mut unsafe_skip = sample(Role::Worker, golden_versions()[2]);
        unsafe_skip.join.as_mut().unwrap().discovery = Discovery::Token {
            endpoint: "192.0.2.10:6443".into(),
            token: TOKEN.into(),
            ca_cert_hashes: vec![],
            unsafe_skip_ca_verification: true,
        };
        let docs = documents(&render(&unsafe_skip).unwrap());
        assert_eq!(
            docs[0]["discovery"]["bootstrapToken"]["unsafeSkipCAVerification"].as_bool(),
            Some(true)
        );
    }
}
