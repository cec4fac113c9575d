//! Skip lists: path prefixes left out of a plan, each with its reason. A
//! profile carries one (`[[skip]]`), and `--skip-list FILE` replaces it.

/// Skip list: path prefixes with reasons, parsed from a data file.
#[derive(Debug, Clone, Default)]
pub struct SkipList {
    entries: Vec<(String, String)>,
}

impl SkipList {
    /// A skip list from (prefix, reason) pairs.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, String)>) -> SkipList {
        SkipList {
            entries: entries.into_iter().collect(),
        }
    }

    /// Parses `prefix   # reason` lines; `#` lines and blanks are ignored.
    pub fn parse(text: &str) -> SkipList {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| match l.split_once('#') {
                Some((p, r)) => (p.trim().to_string(), r.trim().to_string()),
                None => (l.to_string(), "listed in the skip list".to_string()),
            })
            .collect();
        SkipList { entries }
    }

    /// The reason a relative path is skipped, if it is.
    pub fn reason(&self, relative_path: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(prefix, _)| {
                relative_path.starts_with(prefix.as_str())
                    || relative_path.contains(&format!("/{prefix}"))
            })
            .map(|(_, reason)| reason.as_str())
    }
}
