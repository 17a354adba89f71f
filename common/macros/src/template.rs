//! The placeholders of a format string, as `format!` and thiserror read them.

/// What a placeholder refers to.
#[derive(Debug, PartialEq, Eq)]
pub enum Argument {
    /// `{0}`, or `{}` numbered in order as format! numbers it: a positional argument (or a
    /// tuple field) by index.
    Index(usize),
    /// `{path}`: a named argument, a field, or a name in scope.
    Name(String),
}

/// One placeholder occurrence, in the order of the format string.
#[derive(Debug, PartialEq, Eq)]
pub struct Placeholder {
    /// As written, braces included (`{path:?}`): the key a translation's placeholder matches.
    pub written: String,
    pub argument: Argument,
    /// The format spec after `:` (`?`, `o`, `>10`), empty for plain `Display`.
    pub spec: String,
}

/// The placeholders of `template`; `{{` and `}}` are literal braces.
pub fn placeholders(template: &str) -> Result<Vec<Placeholder>, String> {
    let mut found = Vec::new();
    let mut next = 0;
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!("unmatched '}}' in {template:?}"));
        }
        let end = tail
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in {template:?}"))?;
        let inner = &tail[1..end];
        let (name, spec) = inner.split_once(':').unwrap_or((inner, ""));
        let argument = if name.is_empty() {
            next += 1;
            Argument::Index(next - 1)
        } else if let Ok(index) = name.parse() {
            Argument::Index(index)
        } else {
            Argument::Name(name.to_string())
        };
        found.push(Placeholder {
            written: tail[..=end].to_string(),
            argument,
            spec: spec.to_string(),
        });
        rest = &tail[end + 1..];
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_placeholder_and_skips_escaped_braces() {
        let found = placeholders("{{x}} {path} {0:?} {} {mode:o} {}").unwrap();
        let arguments: Vec<_> = found.iter().map(|p| &p.argument).collect();
        assert_eq!(
            arguments,
            [
                &Argument::Name("path".into()),
                &Argument::Index(0),
                &Argument::Index(0),
                &Argument::Name("mode".into()),
                &Argument::Index(1)
            ]
        );
        assert_eq!(found[1].written, "{0:?}");
        assert_eq!(found[1].spec, "?");
        assert_eq!(found[3].spec, "o");
    }

    #[test]
    fn refuses_unbalanced_braces() {
        assert!(placeholders("a {b").is_err());
        assert!(placeholders("a } b").is_err());
    }
}
