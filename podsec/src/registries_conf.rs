//! containers-registries.conf(5): allow plain HTTP to registry.local, through a real TOML edit
//! that keeps every other line and comment of the file.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

pub const REGISTRY: &str = "registry.local";

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum RegistriesConfError {
    #[error("/etc/containers/registries.conf is not valid TOML: {0}")]
    Parse(#[from] toml_edit::TomlError),
    #[error("/etc/containers/registries.conf: {0}")]
    Shape(String),
}

/// The file with registry.local marked insecure (plain HTTP). Version 2 files get (or update) a
/// `[[registry]]` table; version 1 files (`[registries.insecure]`) get the name in their list, so
/// the two formats are never mixed.
pub fn allow_insecure_registry_local(text: &str) -> Result<String, RegistriesConfError> {
    let mut document: DocumentMut = text.parse()?;
    if let Some(v1) = document
        .get_mut("registries")
        .and_then(Item::as_table_like_mut)
    {
        let insecure = v1
            .entry("insecure")
            .or_insert(Item::Table(Table::new()))
            .as_table_like_mut()
            .ok_or_else(|| {
                RegistriesConfError::Shape("[registries.insecure] is not a table".into())
            })?;
        let list = insecure
            .entry("registries")
            .or_insert(value(toml_edit::Array::new()))
            .as_array_mut()
            .ok_or_else(|| {
                RegistriesConfError::Shape("registries.insecure.registries is not an array".into())
            })?;
        if !list.iter().any(|v| v.as_str() == Some(REGISTRY)) {
            list.push(REGISTRY);
        }
        return Ok(document.to_string());
    }
    let registries = document
        .entry("registry")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| RegistriesConfError::Shape("'registry' is not an array of tables".into()))?;
    let existing = registries.iter_mut().find(|t| {
        t.get("location").and_then(Item::as_str) == Some(REGISTRY) && t.get("prefix").is_none()
    });
    match existing {
        Some(table) => {
            if table.get("insecure").and_then(Item::as_bool) != Some(true) {
                table["insecure"] = value(true);
            }
        }
        None => {
            let mut table = Table::new();
            table["location"] = value(REGISTRY);
            table["insecure"] = value(true);
            registries.push(table);
        }
    }
    Ok(document.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "# comment kept\nunqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nlocation = \"quay.io\"\n";

    #[test]
    fn adds_the_table_and_keeps_the_rest() {
        let out = allow_insecure_registry_local(DEBIAN).unwrap();
        assert!(
            out.starts_with("# comment kept\nunqualified-search-registries"),
            "{out}"
        );
        let parsed: DocumentMut = out.parse().unwrap();
        let tables = parsed["registry"].as_array_of_tables().unwrap();
        assert_eq!(tables.len(), 2);
        assert_eq!(tables.get(1).unwrap()["insecure"].as_bool(), Some(true));
        assert_eq!(
            allow_insecure_registry_local(&out).unwrap(),
            out,
            "not idempotent"
        );
    }

    #[test]
    fn updates_an_existing_entry_and_handles_v1() {
        let out = allow_insecure_registry_local(
            "[[registry]]\nlocation = \"registry.local\"\ninsecure = false\n",
        )
        .unwrap();
        assert!(
            out.contains("insecure = true") && !out.contains("false"),
            "{out}"
        );
        let v1 = allow_insecure_registry_local("[registries.search]\nregistries = ['docker.io']\n")
            .unwrap();
        assert!(
            v1.contains("[registries.insecure]") && v1.contains("registry.local"),
            "{v1}"
        );
        assert!(!v1.contains("[[registry]]"), "{v1}");
        assert_eq!(
            allow_insecure_registry_local("").unwrap().trim(),
            "[[registry]]\nlocation = \"registry.local\"\ninsecure = true"
        );
    }
}
