//! The table: every flag of kubeadm init and join, with its kind, scope and disposition.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` or `--flag=true|false`.
    Bool,
    /// `--flag VALUE` or `--flag=VALUE`.
    Value,
    /// A comma-separated list, repeatable: `--flag a,b --flag c`.
    List,
}

/// Which command line a flag belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Both,
    Init,
    Join,
}

/// What happens to a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// podsec acts on it; the text says how.
    Honoured(&'static str),
    /// Given to the native kubeadm next to the generated --config.
    Native,
    /// Refused with this reason.
    Rejected(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub scope: Scope,
    pub disposition: Disposition,
}

const fn flag(name: &'static str, kind: Kind, scope: Scope, disposition: Disposition) -> FlagSpec {
    FlagSpec {
        name,
        short: None,
        kind,
        scope,
        disposition,
    }
}

use Disposition::{Honoured, Native, Rejected};
use Kind::{Bool, List, Value};
use Scope::{Both, Global, Init, Join};

/// Every flag of `kubeadm init` and `kubeadm join` (kubeadm 1.26 to 1.33, and the klog flags
/// upstream's wrapper knew), plus the wrapper's own `--reset`.
pub const FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "help",
        short: Some('h'),
        kind: Bool,
        scope: Global,
        disposition: Honoured("prints this wrapper's usage of the subcommand"),
    },
    FlagSpec {
        name: "v",
        short: Some('v'),
        kind: Value,
        scope: Global,
        disposition: Native,
    },
    flag("skip-headers", Bool, Global, Native),
    flag(
        "add-dir-header",
        Bool,
        Global,
        Rejected(
            "kubeadm refuses it next to --config, and podsec always passes its generated configuration",
        ),
    ),
    flag(
        "rootfs",
        Value,
        Global,
        Rejected("kubeadm would chroot out of the u7s namespace, where the rootless node lives"),
    ),
    flag(
        "log-file",
        Value,
        Global,
        Rejected(
            "kubeadm 1.26 and later have no klog file flags; kubeadm's output goes to the terminal",
        ),
    ),
    flag(
        "log-file-max-size",
        Value,
        Global,
        Rejected("kubeadm 1.26 and later have no klog file flags"),
    ),
    flag(
        "one-output",
        Bool,
        Global,
        Rejected("kubeadm 1.26 and later have no such klog flag"),
    ),
    flag(
        "skip-log-headers",
        Bool,
        Global,
        Rejected("kubeadm 1.26 and later have no such klog flag"),
    ),
    // init and join
    flag(
        "apiserver-advertise-address",
        Value,
        Both,
        Honoured(
            "localAPIEndpoint.advertiseAddress, etcd certificate SANs, the node's address in the u7s namespace",
        ),
    ),
    flag(
        "apiserver-bind-port",
        Value,
        Both,
        Honoured(
            "localAPIEndpoint.bindPort, the default control-plane endpoint and the published port",
        ),
    ),
    flag(
        "certificate-key",
        Value,
        Both,
        Honoured("certificateKey (init) or controlPlane.certificateKey (join)"),
    ),
    flag(
        "config",
        Value,
        Both,
        Rejected(
            "podsec generates the kubeadm configuration of a rootless node; give its settings as flags",
        ),
    ),
    flag(
        "cri-socket",
        Value,
        Both,
        Honoured(
            "must be the node's own CRI-O, unix:///run/crio/crio.sock; any other socket is refused",
        ),
    ),
    flag(
        "dry-run",
        Bool,
        Both,
        Honoured("prints the whole plan and changes nothing; the native kubeadm is not run"),
    ),
    flag("ignore-preflight-errors", List, Both, Native),
    flag("node-name", Value, Both, Honoured("nodeRegistration.name")),
    flag("patches", Value, Both, Honoured("patches.directory")),
    flag("skip-phases", List, Both, Honoured("skipPhases")),
    flag(
        "token",
        Value,
        Both,
        Honoured("bootstrapTokens[0].token (init); discovery and TLS bootstrap token (join)"),
    ),
    flag(
        "reset",
        Bool,
        Both,
        Honoured("podsec's own: removes the leftovers of an earlier deployment without asking"),
    ),
    flag(
        "prepare-only",
        Bool,
        Both,
        Honoured(
            "podsec's own: prepares the host and writes the configuration, then stops before starting the node",
        ),
    ),
    // init only
    flag(
        "apiserver-cert-extra-sans",
        List,
        Init,
        Honoured("apiServer.certSANs"),
    ),
    flag(
        "cert-dir",
        Value,
        Init,
        Honoured(
            "must be /etc/kubernetes/pki, where the rootless node keeps its certificates; any other directory is refused",
        ),
    ),
    flag(
        "control-plane-endpoint",
        Value,
        Init,
        Honoured("controlPlaneEndpoint (default ADVERTISE-ADDRESS:BIND-PORT)"),
    ),
    flag("feature-gates", Value, Init, Honoured("featureGates")),
    flag(
        "image-repository",
        Value,
        Init,
        Honoured("the registry and path of every image, ahead of U7S_REGISTRY and U7S_PLATFORM"),
    ),
    flag(
        "kubernetes-version",
        Value,
        Init,
        Honoured("kubernetesVersion, ahead of U7S_KUBEVERSION; also the packages' minor"),
    ),
    flag(
        "pod-network-cidr",
        Value,
        Init,
        Honoured(
            "networking.podSubnet, controller-manager cluster-cidr, flannel's Network; checked against host networks",
        ),
    ),
    flag(
        "service-cidr",
        Value,
        Init,
        Honoured(
            "networking.serviceSubnet, controller-manager service-cluster-ip-range; checked against host networks",
        ),
    ),
    flag(
        "service-dns-domain",
        Value,
        Init,
        Honoured("networking.dnsDomain"),
    ),
    flag("skip-certificate-key-print", Bool, Init, Native),
    flag("skip-token-print", Bool, Init, Native),
    flag("token-ttl", Value, Init, Honoured("bootstrapTokens[0].ttl")),
    flag("upload-certs", Bool, Init, Native),
    // join only
    flag(
        "control-plane",
        Bool,
        Join,
        Honoured("controlPlane in the JoinConfiguration: the node becomes a control-plane node"),
    ),
    flag(
        "discovery-file",
        Value,
        Join,
        Honoured("discovery.file.kubeConfigPath"),
    ),
    flag(
        "discovery-token",
        Value,
        Join,
        Honoured("discovery.bootstrapToken.token"),
    ),
    flag(
        "discovery-token-ca-cert-hash",
        List,
        Join,
        Honoured("discovery.bootstrapToken.caCertHashes"),
    ),
    flag(
        "discovery-token-unsafe-skip-ca-verification",
        Bool,
        Join,
        Honoured("discovery.bootstrapToken.unsafeSkipCAVerification"),
    ),
    flag(
        "tls-bootstrap-token",
        Value,
        Join,
        Honoured("discovery.tlsBootstrapToken"),
    ),
];

pub fn spec(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FLAGS is a constant table, so its texts are not marked for the catalogue: each one that
    /// is prose (a note of `kubeadm init --help`, a reason for a refusal) must be in it.
    #[test]
    fn every_disposition_text_has_a_russian_translation() {
        for f in FLAGS {
            let text = match f.disposition {
                Disposition::Honoured(text) | Disposition::Rejected(text) => text,
                Disposition::Native => continue,
            };
            if text.contains(' ') {
                assert!(
                    crate::TRANSLATIONS.get(text).is_some(),
                    "--{}: {text:?} is not in po/ru.po",
                    f.name
                );
            }
        }
    }
}
