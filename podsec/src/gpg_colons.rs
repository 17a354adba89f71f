//! Reading `gpg --with-colons` listings (the machine interface, not the human one).

/// The fingerprints of the primary keys: the `fpr` record that follows each `record` line
/// (`pub` for public listings, `sec` for secret ones); subkey fingerprints are skipped.
pub fn primary_fingerprints(colons: &str, record: &str) -> Vec<String> {
    let mut fingerprints = Vec::new();
    let mut after_primary = false;
    for line in colons.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.first() {
            Some(kind) if *kind == record => after_primary = true,
            Some(&"fpr") if after_primary => {
                if let Some(fingerprint) = fields.get(9).filter(|f| !f.is_empty()) {
                    fingerprints.push(fingerprint.to_string());
                }
                after_primary = false;
            }
            _ => {}
        }
    }
    fingerprints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_not_subkey_fingerprints() {
        let listing = "sec:u:255:22:AAAA:1:::u:::scESC:::+:::23::0:\nfpr:::::::::PRIMARY1:\nuid:u::::1::X::Maker <m@r.l>::::::::::0:\nssb:u:255:18:BBBB:1::::::e:::+:::23:\nfpr:::::::::SUB1:\n";
        assert_eq!(primary_fingerprints(listing, "sec"), ["PRIMARY1"]);
        assert!(primary_fingerprints(listing, "pub").is_empty());
    }
}
