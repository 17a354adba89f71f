//! containers-registries.d(5): where signatures of each registry scope are read and written.
//!
//! containers/image merges every `*.yaml` of the directory; at most one file may define
//! `default-docker`, and each `docker:` scope may be defined once across all files. Unknown keys
//! are kept when a file is rewritten.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::image_ref::ImageRef;

#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
pub enum RegistriesDError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid registries.d YAML: {source}")]
    Parse {
        path: PathBuf,
        source: crate::yaml::ReadError,
    },
    #[error("{path}: default-docker is already defined in {first}")]
    DuplicateDefault { path: PathBuf, first: PathBuf },
    #[error("{path}: docker scope '{scope}' is already defined in {first}")]
    DuplicateScope {
        path: PathBuf,
        scope: String,
        first: PathBuf,
    },
}

/// One registries.d file, or the merge of a directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistriesD {
    #[serde(
        rename = "default-docker",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_docker: Option<Section>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub docker: IndexMap<String, Section>,
    #[serde(flatten)]
    pub extra: IndexMap<String, serde_json::Value>,
}

/// The signature storage settings of one scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Section {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookaside: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookaside_staging: Option<String>,
    /// Legacy spelling of `lookaside` (not the Sigstore project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigstore: Option<String>,
    /// Legacy spelling of `lookaside-staging`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigstore_staging: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_sigstore_attachments: Option<bool>,
    #[serde(flatten)]
    pub extra: IndexMap<String, serde_json::Value>,
}

impl Section {
    /// Where signatures are read: lookaside, else sigstore.
    pub fn read_url(&self) -> Option<&str> {
        self.lookaside.as_deref().or(self.sigstore.as_deref())
    }

    /// Where signatures are written: lookaside-staging, sigstore-staging, lookaside, sigstore.
    fn write_url(&self) -> Option<&str> {
        self.lookaside_staging
            .as_deref()
            .or(self.sigstore_staging.as_deref())
            .or(self.read_url())
    }
}

/// Read or write access, which selects the key order of [`Section`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl RegistriesD {
    pub fn from_yaml(text: &str) -> Result<RegistriesD, crate::yaml::ReadError> {
        if text.trim().is_empty() {
            return Ok(RegistriesD::default());
        }
        crate::yaml::from_str(text)
    }

    /// The YAML text (the writer's error is kept in the signature; unknown fields are JSON-like
    /// values, which every YAML writer can write).
    pub fn to_yaml(&self) -> Result<String, crate::yaml::WriteError> {
        crate::yaml::to_string(self)
    }

    /// Merges every `*.yaml` of `dir` in name order; a missing directory is an empty config.
    pub fn load_dir(dir: &Path) -> Result<RegistriesD, RegistriesDError> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistriesD::default()),
            Err(source) => {
                return Err(RegistriesDError::Read {
                    path: dir.into(),
                    source,
                });
            }
        };
        files.sort();
        let mut texts = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| RegistriesDError::Read {
                path: path.clone(),
                source,
            })?;
            texts.push((path, text));
        }
        RegistriesD::merge(texts)
    }

    /// Merges the texts of registries.d files in the order given (callers sort by file name),
    /// as containers/image does: one `default-docker` at most, each docker scope once.
    pub fn merge(
        files: impl IntoIterator<Item = (PathBuf, String)>,
    ) -> Result<RegistriesD, RegistriesDError> {
        let mut merged = RegistriesD::default();
        let mut default_from: Option<PathBuf> = None;
        let mut scope_from: IndexMap<String, PathBuf> = IndexMap::new();
        for (path, text) in files {
            let file = RegistriesD::from_yaml(&text).map_err(|source| RegistriesDError::Parse {
                path: path.clone(),
                source,
            })?;
            if let Some(section) = file.default_docker {
                if let Some(first) = &default_from {
                    return Err(RegistriesDError::DuplicateDefault {
                        path,
                        first: first.clone(),
                    });
                }
                default_from = Some(path.clone());
                merged.default_docker = Some(section);
            }
            for (scope, section) in file.docker {
                if let Some(first) = scope_from.get(&scope) {
                    return Err(RegistriesDError::DuplicateScope {
                        path,
                        scope,
                        first: first.clone(),
                    });
                }
                scope_from.insert(scope.clone(), path.clone());
                merged.docker.insert(scope, section);
            }
            merged.extra.extend(file.extra);
        }
        Ok(merged)
    }

    /// The configured signature storage URL for `image`, as containers/image picks it: the first
    /// scope from the most specific down that has a URL for this access, else default-docker.
    /// `None` means the built-in default applies ([`builtin_default`]).
    pub fn storage_url(&self, image: &ImageRef, access: Access) -> Option<&str> {
        fn pick(section: &Section, access: Access) -> Option<&str> {
            match access {
                Access::Read => section.read_url(),
                Access::Write => section.write_url(),
            }
        }
        image
            .policy_scopes()
            .iter()
            .filter_map(|scope| self.docker.get(scope))
            .find_map(|section| pick(section, access))
            .or_else(|| {
                self.default_docker
                    .as_ref()
                    .and_then(|section| pick(section, access))
            })
    }
}

/// containers/image's built-in storage when nothing is configured: root's
/// `file:///var/lib/containers/sigstore`, a user's `file://$HOME/.local/share/containers/sigstore`.
pub fn builtin_default(uid: u32, home: &Path) -> String {
    if uid == 0 {
        "file:///var/lib/containers/sigstore".into()
    } else {
        format!("file://{}/.local/share/containers/sigstore", home.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PODSEC_DEFAULT: &str = "default-docker:\n  lookaside: http://sigstore.local:81/sigstore/\n  sigstore: http://sigstore.local:81/sigstore/\n";

    #[test]
    fn reads_podsec_default_yaml() {
        let config = RegistriesD::from_yaml(PODSEC_DEFAULT).unwrap();
        let image = ImageRef::parse("registry.local/c10f/pause:3.9").unwrap();
        assert_eq!(
            config.storage_url(&image, Access::Read),
            Some("http://sigstore.local:81/sigstore/")
        );
        assert_eq!(
            config.storage_url(&image, Access::Write),
            Some("http://sigstore.local:81/sigstore/")
        );
    }

    #[test]
    fn staging_wins_for_writes_and_scopes_fall_through() {
        let config = RegistriesD::from_yaml(
            "default-docker:\n  lookaside: http://d/\ndocker:\n  registry.local:\n    lookaside: http://r/\n    lookaside-staging: file:///s/\n  registry.local/c10f:\n    use-sigstore-attachments: true\n",
        )
        .unwrap();
        let image = ImageRef::parse("registry.local/c10f/pause:3.9").unwrap();
        // registry.local/c10f has no URL, so its parent registry.local answers.
        assert_eq!(config.storage_url(&image, Access::Read), Some("http://r/"));
        assert_eq!(
            config.storage_url(&image, Access::Write),
            Some("file:///s/")
        );
        let other = ImageRef::parse("quay.io/a/b").unwrap();
        assert_eq!(config.storage_url(&other, Access::Write), Some("http://d/"));
    }

    #[test]
    fn directory_merge_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("default.yaml"), PODSEC_DEFAULT).unwrap();
        std::fs::write(
            dir.path().join("other.yaml"),
            "docker:\n  quay.io:\n    lookaside: http://q/\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.yml"), "not: [valid").unwrap();
        let merged = RegistriesD::load_dir(dir.path()).unwrap();
        assert!(merged.default_docker.is_some());
        assert!(merged.docker.contains_key("quay.io"));

        std::fs::write(
            dir.path().join("z.yaml"),
            "docker:\n  quay.io:\n    lookaside: http://x/\n",
        )
        .unwrap();
        let err = RegistriesD::load_dir(dir.path()).unwrap_err();
        assert!(
            matches!(err, RegistriesDError::DuplicateScope { ref scope, .. } if scope == "quay.io"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("z.yaml")).unwrap();
        std::fs::write(dir.path().join("z.yaml"), PODSEC_DEFAULT).unwrap();
        assert!(matches!(
            RegistriesD::load_dir(dir.path()),
            Err(RegistriesDError::DuplicateDefault { .. })
        ));
    }

    #[test]
    fn unknown_keys_survive_a_rewrite() {
        let text = "default-docker:\n  lookaside: http://d/\n  future-key: 1\nfuture-top: x\nfuture-z:\n  port: \"80\"\n  list:\n  - on\n  b: |\n    two\n    lines\nfuture-a: null\n";
        let config = RegistriesD::from_yaml(text).unwrap();
        let written = config.to_yaml().unwrap();
        let again = RegistriesD::from_yaml(&written).unwrap();
        assert_eq!(config, again);
        // In their order, with their types: `on` stays a string, "80" is not a number.
        assert_eq!(
            written,
            "default-docker:\n  lookaside: http://d/\n  future-key: 1\nfuture-top: x\nfuture-z:\n  port: \"80\"\n  list:\n  - \"on\"\n  b: |\n    two\n    lines\nfuture-a: null\n"
        );
    }

    #[test]
    fn an_unknown_field_yaml_cannot_hold_is_a_read_error_not_a_panic() {
        // Found by the fuzzer (tests/fuzz, registries_d_yaml): a mapping as a mapping key. It
        // used to read and then fail (first: panic) at writing; unknown fields are JSON-like
        // values now, with string keys only, so the file is refused when it is read.
        let text = "default-dockedefault-docktry.local:\nr:\n ? ?   t";
        assert!(RegistriesD::from_yaml(text).is_err());
    }
}
