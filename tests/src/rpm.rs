//! The RPM packages of this source tree, as `make rpm` builds them (scripts/rpm-build: offline
//! rpmbuild from a tarball with vendored crates, cached per source state in `rpm/` of cargo's
//! target directory), and queries of them with `rpm -qp`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The seven packages of rpm/podsec.spec.
pub const PACKAGES: &[&str] = &[
    "podsec",
    "podsec-k8s",
    "podsec-k8s-rbac",
    "podsec-inotify",
    "podsec-dev",
    "podsec-icinga",
    "podsec-nagios",
];

/// The built packages: the directory of the build and each package's file.
pub struct Built {
    pub dir: PathBuf,
    pub rpms: BTreeMap<String, PathBuf>,
}

impl Built {
    pub fn rpm(&self, name: &str) -> &Path {
        self.rpms
            .get(name)
            .unwrap_or_else(|| panic!("no package {name} among {:?}", self.rpms.keys()))
    }

    /// `rpm -qp <args> <package file>`, stdout; fails the test on an error.
    pub fn query(&self, name: &str, args: &[&str]) -> String {
        let output = Command::new("rpm")
            .arg("-qp")
            .args(args)
            .arg(self.rpm(name))
            .output()
            .expect("run rpm");
        assert!(
            output.status.success(),
            "rpm -qp {args:?} {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Every file of a package: (owner, group, permissions like `-rwxr-xr-x`, path).
    pub fn files(&self, name: &str) -> Vec<FileEntry> {
        self.query(
            name,
            &[
                "--qf",
                "[%{FILEUSERNAME}\t%{FILEGROUPNAME}\t%{FILEMODES:perms}\t%{FILELINKTOS}\t%{FILENAMES}\n]",
            ],
        )
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            assert_eq!(fields.len(), 5, "unexpected query line {line:?}");
            FileEntry {
                user: fields[0].to_string(),
                group: fields[1].to_string(),
                mode: fields[2].to_string(),
                link_to: fields[3].to_string(),
                path: fields[4].to_string(),
            }
        })
        .collect()
    }

    /// The build log of rpmbuild.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rpmbuild.log")).expect("rpmbuild.log")
    }

    /// The source tarball the packages were built from.
    pub fn tarball(&self) -> PathBuf {
        std::fs::read_dir(&self.dir)
            .expect("build directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "tar"))
            .expect("source tarball in the build directory")
    }
}

#[derive(Debug, Clone)]
pub struct FileEntry {
    pub user: String,
    pub group: String,
    pub mode: String,
    pub link_to: String,
    pub path: String,
}

impl FileEntry {
    pub fn is_dir(&self) -> bool {
        self.mode.starts_with('d')
    }
    pub fn is_link(&self) -> bool {
        self.mode.starts_with('l')
    }
    pub fn is_regular(&self) -> bool {
        self.mode.starts_with('-')
    }
    pub fn is_executable(&self) -> bool {
        self.is_regular() && self.mode[1..].contains('x')
    }
    /// Writable by group or others (symbolic links always show rwx and do not count).
    pub fn is_shared_writable(&self) -> bool {
        !self.is_link() && (self.mode.as_bytes()[5] == b'w' || self.mode.as_bytes()[8] == b'w')
    }
}

/// The project's root (the tests crate is one of its members).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("project root")
        .to_path_buf()
}

/// Builds the packages once per test process (scripts/rpm-build reuses a build of the same
/// source state, so only the first run after a change pays for rpmbuild).
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = project_root();
        // Cargo's target directory of this build (target/ unless CARGO_TARGET_DIR moved it):
        // the packages and their compiled crates are kept there too.
        let builds = crate::sandbox::target_dir()
            .parent()
            .expect("target directory")
            .to_path_buf();
        let output = Command::new(root.join("scripts/rpm-build"))
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &builds)
            .env("PODSEC_RPM_TARGET_DIR", builds.join("rpm-cargo"))
            .output()
            .expect("run scripts/rpm-build");
        assert!(
            output.status.success(),
            "scripts/rpm-build failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let dir = PathBuf::from(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .last()
                .expect("rpm-build prints its directory")
                .trim(),
        );
        let mut rpms = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).expect("build directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rpm") {
                let name = Command::new("rpm")
                    .args(["-qp", "--qf", "%{NAME}"])
                    .arg(&path)
                    .output()
                    .expect("rpm -qp");
                rpms.insert(String::from_utf8_lossy(&name.stdout).into_owned(), path);
            }
        }
        Built { dir, rpms }
    })
}
