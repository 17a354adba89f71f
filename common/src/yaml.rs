//! YAML for the whole workspace: serde-saphyr (the crate kube already brings) with one set of
//! reading options and one output style, so registries.d, kubeadm and kubelet configurations,
//! static-pod manifests, CNI manifests and kubeconfigs are all read and written the same way.
//! Untyped values are `serde_json::Value`: the workspace's serde_json keeps the key order of the
//! file (`preserve_order`), so a rewritten file keeps its keys where they were.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use serde_saphyr::Spanned;

/// Why a text is not the YAML asked for (its message names line and column). Boxed: the parser's
/// error is over 100 bytes, too large to travel in every `Result` of the callers.
#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
#[error(transparent)]
pub struct ReadError(Box<serde_saphyr::Error>);

/// Why a value cannot be written as YAML.
#[derive(Debug, thiserror::Error, crate::i18n::Localize)]
#[error(transparent)]
pub struct WriteError(Box<serde_saphyr::SerializeError>);

fn read_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // YAML 1.2 scalars, as the YAML crate before (serde_norway) read them: `yes`/`on`,
        // `0755`, `1_000` stay strings (and are written quoted, see the tests).
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        // Messages name line and column, never quote the input: a kubeconfig holds keys.
        with_snippet: false,
        // Budgets stay serde-saphyr's: Calico's operator-crds.yaml (3.5 MB, 32 documents) needs
        // under 100,000 of the 250,000 nodes; alias bombs and deep nesting are refused.
    }
}

fn write_options() -> serde_saphyr::SerializerOptions {
    // Long one-line strings (base64 certificates, command lines) stay one plain or quoted line,
    // as kubeadm writes them, not a folded `>` block; multi-line strings are `|` blocks.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    options
}

/// One document (an empty text or a comment-only one is null).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, ReadError> {
    serde_saphyr::from_str_with_options(text, read_options()).map_err(|e| ReadError(Box::new(e)))
}

/// Every document of a `---`-separated stream, empty (null) documents left out.
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, ReadError> {
    serde_saphyr::from_multiple_with_options(text, read_options())
        .map_err(|e| ReadError(Box::new(e)))
}

/// The YAML text of one document, ending in a newline, without a leading `---`.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, WriteError> {
    serde_saphyr::to_string_with_options(value, write_options())
        .map_err(|e| WriteError(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn scalars_keep_their_yaml_1_2_types_both_ways() {
        let value: Value = from_str(
            "a: yes\nb: on\nc: 0755\nd: 1_000\ne: \"80\"\nf: 80\ng: true\nh: ~\ni: 2001-12-14\n",
        )
        .unwrap();
        assert_eq!(
            value,
            json!({"a": "yes", "b": "on", "c": "0755", "d": "1_000", "e": "80", "f": 80,
                   "g": true, "h": null, "i": "2001-12-14"})
        );
        // Written so that YAML 1.1 readers (kubernetes' go-yaml) read the same strings back.
        let text = to_string(&value).unwrap();
        assert_eq!(
            text,
            "a: \"yes\"\nb: \"on\"\nc: \"0755\"\nd: \"1_000\"\ne: \"80\"\nf: 80\ng: true\nh: null\ni: \"2001-12-14\"\n"
        );
        assert_eq!(from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn key_order_and_string_styles_survive_a_rewrite() {
        let text = "zeta: 1\nalpha:\n  text: |\n    line one\n    line two\n  x: []\n  w: {}\nlist:\n- b\n- a\n";
        let value: Value = from_str(text).unwrap();
        assert_eq!(to_string(&value).unwrap(), text);
        let long = "QUJD".repeat(100);
        let one_line = to_string(&json!({ "key": long })).unwrap();
        assert_eq!(one_line, format!("key: {long}\n"));
    }

    #[test]
    fn streams_skip_empty_documents_and_errors_do_not_quote_the_input() {
        let docs: Vec<Value> =
            documents("---\n# only a comment\n---\na: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": 2})]);
        assert_eq!(from_str::<Value>("# nothing\n").unwrap(), Value::Null);
        let err = from_str::<Value>("client-key-data: [secret\n").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("line 2") || message.contains("line 1"),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn a_manifest_of_several_megabytes_parses() {
        // As dense as real CRDs (about 40 bytes a node): schemas with descriptions.
        let mut text = String::new();
        for crd in 0..55 {
            text.push_str(&format!(
                "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: c{crd}.example.org\nspec:\n  versions:\n  - name: v1\n    schema:\n      openAPIV3Schema:\n        properties:\n"
            ));
            for field in 0..500 {
                text.push_str(&format!(
                    "          field{field}:\n            description: The {field}th setting of this resource, as its controller reads it when it reconciles.\n            type: string\n"
                ));
            }
        }
        assert!(text.len() > 4_000_000, "{}", text.len());
        assert_eq!(documents::<Value>(&text).unwrap().len(), 55);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(from_str::<Value>(&text).is_err());
    }
}
