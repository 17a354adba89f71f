//! Resolution against an in-memory registry.

use super::*;

/// An in-memory registry.
pub struct FakeTags(pub HashMap<String, Vec<String>>);

impl FakeTags {
    pub fn new(entries: &[(&str, &[&str])]) -> FakeTags {
        FakeTags(
            entries
                .iter()
                .map(|(r, t)| (r.to_string(), t.iter().map(|t| t.to_string()).collect()))
                .collect(),
        )
    }
}

impl Tags for FakeTags {
    fn tags(&self, repository: &str) -> Result<Vec<String>, ResolveError> {
        Ok(self.0.get(repository).cloned().unwrap_or_default())
    }
}

fn env(pairs: &[(&str, &str)]) -> U7sEnv {
    U7sEnv::from_pairs(pairs.iter().copied()).unwrap()
}

fn alt() -> Option<String> {
    Some("c10f".into())
}

#[test]
fn registry_precedence() {
    let mut notes = Vec::new();
    let pick = |image_repository: Option<&str>, e: &U7sEnv, hosts: bool| {
        source(image_repository, e, hosts, alt(), &mut Vec::new()).unwrap()
    };
    // flag > environment
    let s = pick(
        Some("mirror.lan/k8s"),
        &env(&[("U7S_REGISTRY", "registry.local")]),
        true,
    );
    assert_eq!(
        (s.prefix.as_str(), s.origin.as_str()),
        ("mirror.lan/k8s", "--image-repository")
    );
    // a set-empty U7S_REGISTRY: native images, no platform
    let s = pick(None, &env(&[("U7S_REGISTRY", "")]), true);
    assert_eq!(s.prefix, "registry.k8s.io");
    assert!(s.native);
    assert_eq!(s.flannel_repository(), "docker.io/flannel");
    // a non-empty U7S_REGISTRY is honoured, even with registry.local in /etc/hosts (§10.2/12)
    let s = pick(
        None,
        &env(&[("U7S_REGISTRY", "registry.altlinux.org")]),
        true,
    );
    assert_eq!(s.prefix, "registry.altlinux.org/c10f");
    let s = pick(
        None,
        &env(&[("U7S_REGISTRY", "registry.altlinux.org/p11")]),
        true,
    );
    assert_eq!(s.prefix, "registry.altlinux.org/p11");
    // /etc/hosts, then the default
    assert_eq!(pick(None, &env(&[]), true).prefix, "registry.local/c10f");
    assert_eq!(
        pick(None, &env(&[]), false).prefix,
        "registry.altlinux.org/c10f"
    );
    // platform from the variable, old k8s-c10fN names mapped for every image
    let s = source(
        None,
        &env(&[("U7S_PLATFORM", "k8s-c10f2")]),
        true,
        None,
        &mut notes,
    )
    .unwrap();
    assert_eq!(s.prefix, "registry.local/c10f");
    assert_eq!(s.flannel_repository(), "registry.local/c10f");
    assert!(notes[0].contains("using c10f"), "{notes:?}");
    // no platform off ALT: an error, not "registry.local//kube-apiserver"
    assert_eq!(
        source(None, &env(&[]), true, None, &mut notes).unwrap_err(),
        ResolveError::NoPlatform
    );
}

#[test]
fn environment_is_validated() {
    for (name, value) in [
        ("U7S_KUBEVERSION", "1.x"),
        ("U7S_KUBEVERSION", "v1.25.3"),
        ("U7S_SETAVAILABLEIMAGES", "maybe"),
        ("U7S_REGISTRY", "reg istry"),
        ("U7S_PLATFORM", "C10F;rm"),
        ("U7S_FLANNEL_TAG", "latest"),
        ("U7S_CNI_PLUGIN", "weave"),
        ("U7S_CNI_PLUGIN", "calico"),
        ("U7S_CALICO_MANIFEST", "/root/calico.yaml"),
        ("U7S_ARCHIMAGES", "busybox"),
    ] {
        let err = U7sEnv::from_pairs([(name, value)]).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
    let e = env(&[
        ("U7S_SETAVAILABLEIMAGES", "yes"),
        ("U7S_ARCHIMAGES", "c10f/busybox:1.36 registry.local/x/y:1"),
        ("U7S_SKIP_PHASES", "addon/kube-proxy"),
    ]);
    assert!(e.set_available_images);
    assert_eq!(e.arch_images.len(), 2);
    assert_eq!(e.cni(), CniPlugin::Flannel);
    assert_eq!(e.skip_phases, ["addon/kube-proxy"]);
    // calico: only with the administrator's manifest, which is not refused as "unsupported"
    let err = U7sEnv::from_pairs([("U7S_CNI_PLUGIN", "calico")]).unwrap_err();
    assert!(err.to_string().contains("set U7S_CALICO_MANIFEST"), "{err}");
    assert!(!err.to_string().contains("not supported"), "{err}");
    let e = env(&[
        ("U7S_CNI_PLUGIN", "calico"),
        ("U7S_CALICO_MANIFEST", "/root/calico.yaml"),
    ]);
    assert_eq!(e.cni(), CniPlugin::Calico);
    assert_eq!(e.calico_manifest, Some(PathBuf::from("/root/calico.yaml")));
    // a manifest without calico chosen is a mistake, not silently flannel
    let err = U7sEnv::from_pairs([
        ("U7S_CNI_PLUGIN", "flannel"),
        ("U7S_CALICO_MANIFEST", "/root/calico.yaml"),
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains("set U7S_CNI_PLUGIN=calico"),
        "{err}"
    );
}

fn kube_tags() -> FakeTags {
    FakeTags::new(&[(
        "registry.local/c10f/kube-apiserver",
        &[
            "v1.26.9", "v1.26.11", "v1.26.3", "latest", "v1.27.2", "v1.33.1", "v1.33.13",
        ],
    )])
}

#[test]
fn version_precedence_and_numeric_patches() {
    let src = source(None, &env(&[]), true, alt(), &mut Vec::new()).unwrap();
    let tags = kube_tags();
    let installed = Some(KubeVersion::parse("v1.33.2").unwrap());
    let v = |flag, e: &U7sEnv, installed, newest| {
        version(flag, e, installed, newest, &src, &tags).map(|c| c.value.to_string())
    };
    // v1.26.11 > v1.26.9 (upstream sorted as strings)
    assert_eq!(
        v(None, &env(&[("U7S_KUBEVERSION", "v1.26")]), installed, None).unwrap(),
        "v1.26.11"
    );
    // flag > environment > installed kubeadm > packages
    assert_eq!(
        v(
            VersionRequest::parse("v1.27").ok(),
            &env(&[("U7S_KUBEVERSION", "v1.26")]),
            installed,
            None
        )
        .unwrap(),
        "v1.27.2"
    );
    assert_eq!(
        v(None, &env(&[]), installed, Some(Minor::new(26))).unwrap(),
        "v1.33.13"
    );
    assert_eq!(
        v(None, &env(&[]), None, Some(Minor::new(26))).unwrap(),
        "v1.26.11"
    );
    assert_eq!(
        v(None, &env(&[]), None, None).unwrap_err(),
        ResolveError::NoVersion
    );
    // an exact version the registry lacks: the error lists the minor's patches, in order
    let err = v(None, &env(&[("U7S_KUBEVERSION", "v1.26.10")]), None, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("(it has v1.26.3, v1.26.9, v1.26.11); export U7S_KUBEVERSION=v1.26.11"),
        "{err}"
    );
    // allowed substitution: the newest patch of the same minor, announced
    let e = env(&[
        ("U7S_KUBEVERSION", "v1.26.10"),
        ("U7S_SETAVAILABLEIMAGES", "yes"),
    ]);
    let req = requested(None, &e, None, None).unwrap();
    let mut notes = Vec::new();
    let chosen = patch_version(&req, &e, &src, &tags, &mut notes).unwrap();
    assert_eq!(chosen.value.to_string(), "v1.26.11");
    assert!(
        notes[0].contains("deploying v1.26.11 of the same minor instead"),
        "{notes:?}"
    );
    let e = env(&[
        ("U7S_KUBEVERSION", "v1.28.1"),
        ("U7S_SETAVAILABLEIMAGES", "yes"),
    ]);
    let req = requested(None, &e, None, None).unwrap();
    assert!(
        patch_version(&req, &e, &src, &tags, &mut notes).is_err(),
        "no v1.28 at all"
    );
}

#[test]
fn substitution_stays_within_the_minor_and_is_loud() {
    let tags = FakeTags::new(&[
        (
            "registry.local/c10f/etcd",
            &["3.5.9-0", "3.5.16-0", "3.6.1-0", "latest"],
        ),
        ("registry.local/c10f/pause", &["3.9", "3.10"]),
        (
            "registry.local/c10f/coredns",
            &["v1.10.1", "v1.11.1", "v1.11.3"],
        ),
    ]);
    let wanted = [
        "registry.local/c10f/etcd:3.5.21-0".to_string(),
        "registry.local/c10f/coredns:v1.11.4".to_string(),
    ];
    let mut notes = Vec::new();
    // not allowed: an error that says what would be used
    let err = check_images(&wanted, None, false, &tags, &mut notes).unwrap_err();
    assert!(
        err.to_string()
            .contains("no tag 3.5.21-0 (it has 3.5.9-0, 3.5.16-0)"),
        "{err}"
    );
    let images = check_images(&wanted, None, true, &tags, &mut notes).unwrap();
    assert_eq!(images[0].pull, "registry.local/c10f/etcd:3.5.16-0");
    assert_eq!(images[0].role, ImageRole::Etcd);
    assert_eq!(images[1].pull, "registry.local/c10f/coredns:v1.11.3");
    assert!(images.iter().all(Image::substituted));
    assert_eq!(notes.len(), 2);
    assert!(
        notes[0].starts_with("WARNING: U7S_SETAVAILABLEIMAGES=yes"),
        "{notes:?}"
    );
    // never another minor: pause 3.11 has no 3.11.x, 3.10 is not a stand-in (§10.2/14)
    let err = check_images(
        &["registry.local/c10f/pause:3.11".to_string()],
        None,
        true,
        &tags,
        &mut notes,
    )
    .unwrap_err();
    assert!(matches!(err, ResolveError::NothingUsable { .. }), "{err}");
    let err = check_images(
        &["registry.local/c10f/etcd:3.4.0-0".to_string()],
        None,
        true,
        &tags,
        &mut notes,
    )
    .unwrap_err();
    assert!(err.to_string().contains("same minor"), "{err}");
}

#[test]
fn flannel_tag_by_number_with_a_manifest_and_honoured_variables() {
    let tags = FakeTags::new(&[
        (
            "registry.local/c10f/flannel",
            &["v0.9.1", "v0.25.1", "v0.26.7", "v0.27.0", "latest"],
        ),
        (
            "registry.local/c10f/flannel-cni-plugin",
            &["v1.5.1-flannel2", "v1.7.1-flannel1", "v1.6.0-flannel1"],
        ),
        ("docker.io/flannel/flannel", &["v0.26.1"]),
        ("docker.io/flannel/flannel-cni-plugin", &["v1.7.1-flannel1"]),
    ]);
    let alt_source = source(None, &env(&[]), true, alt(), &mut Vec::new()).unwrap();
    let mut notes = Vec::new();
    let choice = flannel_images(&env(&[]), &alt_source, &tags, &mut notes).unwrap();
    // v0.27.0 is newer but has no shipped manifest; v0.9.1 is not newer than v0.26.7
    assert_eq!(choice.flannel.pull, "registry.local/c10f/flannel:v0.26.7");
    assert_eq!(
        choice.cni_plugin.pull,
        "registry.local/c10f/flannel-cni-plugin:v1.7.1-flannel1"
    );
    // U7S_FLANNELCNIPLUGIN_TAG is honoured (upstream ignored it, §10.2/15)
    let choice = flannel_images(
        &env(&[
            ("U7S_FLANNEL_TAG", "v0.25.1"),
            ("U7S_FLANNELCNIPLUGIN_TAG", "v1.6.0-flannel1"),
        ]),
        &alt_source,
        &tags,
        &mut notes,
    )
    .unwrap();
    assert_eq!(choice.manifest.minor, (0, 25));
    assert_eq!(
        choice.cni_plugin.pull,
        "registry.local/c10f/flannel-cni-plugin:v1.6.0-flannel1"
    );
    // native registry: flannel from docker.io/flannel, never docker.io/flannel//flannel
    let native = source(None, &env(&[("U7S_REGISTRY", "")]), false, None, &mut notes).unwrap();
    let choice = flannel_images(&env(&[]), &native, &tags, &mut notes).unwrap();
    assert_eq!(choice.flannel.pull, "docker.io/flannel/flannel:v0.26.1");
    // an unshipped U7S_FLANNEL_TAG is an error with a non-zero exit, not exit 0
    assert!(
        flannel_images(
            &env(&[("U7S_FLANNEL_TAG", "v0.27.0")]),
            &alt_source,
            &tags,
            &mut notes
        )
        .is_err()
    );
}

#[test]
fn architectures_map_to_oci_names() {
    assert_eq!(oci_arch("x86_64"), Some("amd64"));
    assert_eq!(oci_arch("aarch64"), Some("arm64"));
    assert_eq!(oci_arch("ppc64le"), Some("ppc64le"));
    assert_eq!(oci_arch("i686"), Some("386"));
    assert_eq!(oci_arch("mips"), None);
}

/// Both steps at once (no package fallback in between).
fn version(
    flag: Option<VersionRequest>,
    env: &U7sEnv,
    installed_kubeadm: Option<KubeVersion>,
    newest_package_minor: Option<Minor>,
    source: &Source,
    tags: &dyn Tags,
) -> Result<Chosen<KubeVersion>, ResolveError> {
    let requested = requested(flag, env, installed_kubeadm, newest_package_minor)?;
    patch_version(&requested, env, source, tags, &mut Vec::new())
}
