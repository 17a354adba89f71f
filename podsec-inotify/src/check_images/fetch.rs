//! Signatures from lookaside stores: `http://` (the signature server), `file://` (the built-in
//! stores, an image maker's staging directory). Each URL is fetched once per run.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use podsec_common::host::beneath::Tree;
use podsec_common::image_ref::{Digest, ImageRef};
use podsec_common::lookaside;

use super::verify::SignatureSource;

/// containers/image reads until the first missing signature; a store listing more than this
/// many for one manifest is not taken at its word.
const MAX_SIGNATURES: usize = 64;
const MAX_SIGNATURE: u64 = 4 << 20;

/// Fetches and caches signatures.
pub struct Fetcher {
    agent: ureq::Agent,
    cache: HashMap<String, Option<Vec<u8>>>,
    /// The home of the user being checked: `file://` URLs below it are read without leaving it.
    home: Option<(std::path::PathBuf, Tree)>,
}

impl Default for Fetcher {
    fn default() -> Self {
        Fetcher::new()
    }
}

impl Fetcher {
    pub fn new() -> Fetcher {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .build()
            .into();
        Fetcher {
            agent,
            cache: HashMap::new(),
            home: None,
        }
    }

    /// Sets the home of the user whose images are checked next.
    pub fn set_home(&mut self, home: Option<&Path>) {
        self.home = home.and_then(|path| {
            Tree::open(path)
                .ok()
                .flatten()
                .map(|tree| (path.to_path_buf(), tree))
        });
    }

    fn fetch(&mut self, url: &str) -> Result<Option<Vec<u8>>, String> {
        if let Some(hit) = self.cache.get(url) {
            return Ok(hit.clone());
        }
        let result = if url.starts_with("http://") {
            self.http(url)?
        } else if let Some(path) = url.strip_prefix("file://") {
            self.file(Path::new(path))?
        } else if url.starts_with("https://") {
            return Err(format!(
                "{url}: https lookaside stores are not supported (podsec serves signatures over http)"
            ));
        } else {
            return Err(format!("{url}: unsupported lookaside URL"));
        };
        self.cache.insert(url.to_string(), result.clone());
        Ok(result)
    }

    fn http(&self, url: &str) -> Result<Option<Vec<u8>>, String> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| format!("{url}: {e}"))?;
        match response.status().as_u16() {
            200 => response
                .body_mut()
                .with_config()
                .limit(MAX_SIGNATURE)
                .read_to_vec()
                .map(Some)
                .map_err(|e| format!("{url}: {e}")),
            404 => Ok(None),
            status => Err(format!("{url}: HTTP status {status}")),
        }
    }

    fn file(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
        if let Some((home, tree)) = &self.home
            && let Ok(relative) = path.strip_prefix(home)
        {
            return tree
                .read(relative, MAX_SIGNATURE)
                .map_err(|e| podsec_common::cli::error_chain(&e));
        }
        // Outside the home (a built-in store, an image maker's staging directory) another user
        // may still own the directory: no FIFO or device may hold root, no link is followed.
        podsec_common::host::files::read_regular(path, MAX_SIGNATURE)
            .map_err(|e| podsec_common::cli::error_chain(&e))
    }
}

impl SignatureSource for Fetcher {
    fn signatures(
        &mut self,
        base: &str,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Vec<Vec<u8>>, String> {
        let base = base.trim_end_matches('/');
        let mut found = Vec::new();
        for index in 1..=MAX_SIGNATURES {
            let url = lookaside::signature_url(base, image, digest, index);
            match self.fetch(&url)? {
                Some(bytes) => found.push(bytes),
                None => break,
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stores_are_read_until_the_first_missing_signature() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "ab".repeat(32);
        let sigdir = dir.path().join(format!("demo/app@sha256={hex}"));
        std::fs::create_dir_all(&sigdir).unwrap();
        std::fs::write(sigdir.join("signature-1"), "one").unwrap();
        std::fs::write(sigdir.join("signature-2"), "two").unwrap();
        std::fs::write(sigdir.join("signature-4"), "four").unwrap();
        let image = ImageRef::parse("registry.local/demo/app:1").unwrap();
        let digest = Digest::parse(&format!("sha256:{hex}")).unwrap();
        let mut fetcher = Fetcher::new();
        let base = format!("file://{}/", dir.path().display());
        let found = fetcher.signatures(&base, &image, &digest).unwrap();
        assert_eq!(found, [b"one".to_vec(), b"two".to_vec()]);
        // a user's store: a link out of their home is refused
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("store")).unwrap();
        std::os::unix::fs::symlink(&sigdir, home.join(format!("store/app@sha256={hex}"))).unwrap();
        fetcher.set_home(Some(&home));
        let image = ImageRef::parse("registry.local/app:1").unwrap();
        let err = fetcher
            .signatures(&format!("file://{}/store", home.display()), &image, &digest)
            .unwrap_err();
        assert!(err.contains("refusing to follow"), "{err}");
        assert!(fetcher.signatures("https://x/", &image, &digest).is_err());
    }

    #[test]
    fn a_fifo_in_a_file_store_outside_the_home_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "cd".repeat(32);
        let sigdir = dir.path().join(format!("app@sha256={hex}"));
        std::fs::create_dir_all(&sigdir).unwrap();
        nix::unistd::mkfifo(
            &sigdir.join("signature-1"),
            nix::sys::stat::Mode::from_bits_truncate(0o666),
        )
        .unwrap();
        let base = format!("file://{}/", dir.path().display());
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let image = ImageRef::parse("registry.local/app:1").unwrap();
            let digest = Digest::parse(&format!("sha256:{hex}")).unwrap();
            let _ = done.send(Fetcher::new().signatures(&base, &image, &digest));
        });
        let result = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("blocked on a FIFO in the signature store");
        let err = result.unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
