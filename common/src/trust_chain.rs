//! The trust chain's fixed names, one contract for every package: podsec writes it
//! (create-policy, create-services, create-imagemakeruser, create-podmanusers), podsec-inotify
//! checks it (check-policy, check-images), podsec-k8s pulls through it.

/// The local registry every node pulls from.
pub const LOCAL_REGISTRY: &str = "registry.local";
/// The signature server's name (nginx's `server_name`, bound in every host's /etc/hosts).
pub const SIGSTORE_HOST: &str = "sigstore.local";
pub const SIGSTORE_ROOT: &str = "/var/sigstore";
/// Public keys of the image makers and the published policy.json: root-owned, read-only for others.
pub const KEYS_DIR: &str = "/var/sigstore/keys";
/// The signature store (lookaside) served as [`SIGSTORE_URL`].
pub const SIGNATURES_DIR: &str = "/var/sigstore/sigstore";
/// Where clients read signatures: every user's default signature store.
pub const SIGSTORE_URL: &str = "http://sigstore.local:81/sigstore/";
pub const SIGSTORE_PORT: u16 = 81;
/// Podman users: signed images of the local registry only.
pub const GROUP_PODMAN: &str = "podman";
/// Image makers: they build, sign and push.
pub const GROUP_PODMAN_DEV: &str = "podman_dev";
