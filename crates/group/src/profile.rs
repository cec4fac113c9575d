//! Archive profiles: how an archive's file paths map to groups and variables, as
//! data (a TOML file) instead of code.
//!
//! A profile names:
//! - how a path maps to named fields: a `pattern` such as
//!   `{activity}/{institution}/{source}/{experiment}/{member}/{table}/{variable}/{grid}/{version}/{file}`
//!   (each `/` part of the pattern matches one directory or the file name, and a
//!   part may mix fields and literal text: `{variable}_{sheet}_{rest}.nc`), or a
//!   `regex` with named captures;
//! - the `group_path` template built from those fields;
//! - which field is the `variable`, and optionally the known variable names
//!   (with ISMIP6's rule that strips an experiment prefix in front of them);
//! - the dimension files `concat`enate along (none: one file per variable per group);
//! - the `time` policy: ISMIP6's year binning, or exact CF decoding;
//! - allowed values of fields (`choices`) and the skip list.
//!
//! Three profiles are built in: `ismip6` (the default, today's rules), `cmip6`, and
//! `files` (one group per file, for any layout).
//! Matching is pure and tested in microseconds; the patterns are matched by hand
//! (a few lines of backtracking over literal separators) because a glob crate
//! matches paths but does not capture named fields, and the `regex` form is
//! there for layouts a pattern cannot say.

use std::collections::BTreeMap;

use floe_wire::{VariableSelection, EVERY_VARIABLE};
use serde::Deserialize;

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "ismip6";

/// The built-in profiles, by id, as their TOML text.
pub const BUILTIN: &[(&str, &str)] = &[
    ("ismip6", include_str!("../data/profiles/ismip6.toml")),
    ("cmip6", include_str!("../data/profiles/cmip6.toml")),
    ("files", include_str!("../data/profiles/files.toml")),
];

/// How steps are placed on the time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimePolicy {
    /// ISMIP6: one step per year, binned by year, with the archive's quirk rules.
    Ismip6Years,
    /// Exact CF decoding in the source calendar; the union axis is by instant.
    CfExact,
}

impl TimePolicy {
    /// The name as a profile writes it.
    pub fn name(self) -> &'static str {
        match self {
            TimePolicy::Ismip6Years => "ismip6-years",
            TimePolicy::CfExact => "cf-exact",
        }
    }
}

/// A skipped path prefix and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipEntry {
    /// Path prefix, relative to the archive root or to any folder above it.
    pub prefix: String,
    /// Why it is skipped.
    pub reason: String,
}

/// A profile file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    id: String,
    version: u32,
    #[serde(default)]
    description: String,
    pattern: Option<String>,
    regex: Option<String>,
    group_path: String,
    #[serde(default)]
    variable: Option<String>,
    #[serde(default)]
    variables: Vec<String>,
    #[serde(default)]
    exclude_variables: Vec<String>,
    #[serde(default)]
    known_variables: Vec<String>,
    #[serde(default)]
    strip_experiment_prefix: Option<String>,
    #[serde(default)]
    concat: Option<String>,
    time: TimePolicy,
    #[serde(default)]
    time_units: Option<String>,
    #[serde(default)]
    choices: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    skip: Vec<SkipEntry>,
}

/// A profile that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Not valid TOML, or a key missing or unknown.
    #[error("profile {name}: {reason}")]
    Syntax {
        /// The profile's file or id.
        name: String,
        /// The TOML reader's message.
        reason: String,
    },
    /// Neither or both of `pattern` and `regex`.
    #[error("profile {id}: give exactly one of `pattern` and `regex`")]
    PathRule {
        /// The profile.
        id: String,
    },
    /// A pattern with an unclosed brace, an empty field or two fields side by side.
    #[error("profile {id}: pattern {pattern:?}: {reason}")]
    Pattern {
        /// The profile.
        id: String,
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// A regex that does not compile.
    #[error("profile {id}: regex: {reason}")]
    Regex {
        /// The profile.
        id: String,
        /// The regex crate's message.
        reason: String,
    },
    /// A template or setting names a field the path rule never captures.
    #[error("profile {id}: {setting} uses field {{{field}}}, which the path rule does not capture (it captures: {captured})")]
    UnknownField {
        /// The profile.
        id: String,
        /// Which setting.
        setting: &'static str,
        /// The field.
        field: String,
        /// The fields the rule captures.
        captured: String,
    },
    /// Settings that contradict each other (variable lists beside a `variable`
    /// field, or a file's variables with nothing to concatenate them along).
    #[error("profile {id}: {reason}")]
    Conflict {
        /// The profile.
        id: String,
        /// What contradicts what.
        reason: String,
    },
    /// `--profile NAME` that is neither built in nor a file.
    #[error("no profile {name:?}: the built-in profiles are {builtin}; anything else must be a TOML file")]
    NotFound {
        /// What was asked for.
        name: String,
        /// The built-in ids.
        builtin: String,
    },
}

/// One `/`-part of a pattern: literal text and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Field(String),
    /// `[...]`: matched if it can be, else skipped (CMIP6's `[_{time_range}]`,
    /// absent from fixed fields' file names).
    Optional(Vec<Token>),
}

#[derive(Debug, Clone)]
enum PathRule {
    Pattern(Vec<Vec<Token>>),
    Regex(regex::Regex),
}

/// A usable profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Its id (`ismip6`, `cmip6`, or a file's own).
    pub id: String,
    /// Its version: a changed profile changes every batch id it makes.
    pub version: u32,
    /// One line on what it is for.
    pub description: String,
    /// The field that names the variable; `None`: each file's variables come from
    /// the file, chosen by [`Profile::file_variables`].
    pub variable_field: Option<String>,
    /// Without a variable field: which of each file's data variables are taken.
    pub file_variables: Option<VariableSelection>,
    /// The group path template.
    pub group_path: String,
    /// The dimension files concatenate along, if any: a name, or
    /// [`floe_wire::UNLIMITED_DIMENSION`] for each file's unlimited dimension.
    pub concat: Option<String>,
    /// The time policy.
    pub time: TimePolicy,
    /// Units of the stored time coordinate under `cf-exact` (`None`: the first file's).
    pub time_units: Option<String>,
    /// The skip list.
    pub skip: Vec<SkipEntry>,
    known_variables: Vec<String>,
    strip_experiment_prefix: Option<String>,
    choices: BTreeMap<String, Vec<String>>,
    rule: PathRule,
}

/// What a profile made of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The group's store path.
    pub group_path: String,
    /// The variable.
    pub variable: String,
    /// Every captured field.
    pub fields: BTreeMap<String, String>,
}

/// Why a path is not part of any group under a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmatched {
    /// The path rule does not match.
    #[error("does not match the {profile} profile's {rule}")]
    NoMatch {
        /// The profile id.
        profile: String,
        /// The rule, as written.
        rule: String,
    },
    /// A field outside its allowed values.
    #[error("field {field} is {value:?}, not one of {allowed}")]
    NotAChoice {
        /// The field.
        field: String,
        /// Its value here.
        value: String,
        /// The allowed values.
        allowed: String,
    },
    /// The group path would not be a plain store path ([`floe_wire::names`]).
    #[error(transparent)]
    BadGroupPath(floe_wire::NameError),
    /// On the skip list.
    #[error("skip list: {0}")]
    Skipped(String),
}

impl Profile {
    /// A built-in profile by id, or a profile file by path.
    pub fn builtin(id: &str) -> Option<Result<Profile, ProfileError>> {
        BUILTIN
            .iter()
            .find(|(name, _)| *name == id)
            .map(|(name, text)| Profile::parse(name, text))
    }

    /// Whether `name` is a built-in profile's id (no parsing).
    pub fn is_builtin(name: &str) -> bool {
        BUILTIN.iter().any(|(id, _)| *id == name)
    }

    /// The ids of the built-in profiles, comma-separated.
    pub fn builtin_ids() -> String {
        BUILTIN
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Parses a profile's TOML; `name` names it in errors (file path or id).
    pub fn parse(name: &str, text: &str) -> Result<Profile, ProfileError> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let id = file.id.clone();
        let rule = match (&file.pattern, &file.regex) {
            (Some(p), None) => PathRule::Pattern(parse_pattern(&id, p)?),
            (None, Some(r)) => {
                PathRule::Regex(regex::Regex::new(r).map_err(|e| ProfileError::Regex {
                    id: id.clone(),
                    reason: e.to_string(),
                })?)
            }
            _ => return Err(ProfileError::PathRule { id }),
        };
        let captured = captured_fields(&rule);
        let unknown = |setting: &'static str, field: &str| ProfileError::UnknownField {
            id: id.clone(),
            setting,
            field: field.to_string(),
            captured: captured.join(", "),
        };
        for field in template_fields(&file.group_path) {
            if !captured.contains(&field) {
                return Err(unknown("group_path", &field));
            }
        }
        if let Some(v) = &file.variable {
            if !captured.contains(v) {
                return Err(unknown("variable", v));
            }
        }
        let file_variables = file_variables(&file)?;
        if let Some(f) = &file.strip_experiment_prefix {
            if !captured.contains(f) {
                return Err(unknown("strip_experiment_prefix", f));
            }
        }
        for f in file.choices.keys() {
            if !captured.contains(f) {
                return Err(unknown("choices", f));
            }
        }
        Ok(Profile {
            id: file.id,
            version: file.version,
            description: file.description,
            variable_field: file.variable,
            file_variables,
            group_path: file.group_path,
            concat: file.concat,
            time: file.time,
            time_units: file.time_units,
            skip: file.skip,
            known_variables: file.known_variables,
            strip_experiment_prefix: file.strip_experiment_prefix,
            choices: file.choices,
            rule,
        })
    }

    /// `id@version`, as it goes into batch ids.
    pub fn tag(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// The path rule as written, for messages.
    pub fn rule_text(&self) -> String {
        match &self.rule {
            PathRule::Pattern(parts) => format!("pattern {}", pattern_text(parts)),
            PathRule::Regex(r) => format!("regex {}", r.as_str()),
        }
    }

    /// The skip reason of a relative path, if it is on the skip list.
    pub fn skip_reason(&self, relative_path: &str) -> Option<&str> {
        self.skip
            .iter()
            .find(|s| {
                relative_path.starts_with(s.prefix.as_str())
                    || relative_path.contains(&format!("/{}", s.prefix))
            })
            .map(|s| s.reason.as_str())
    }

    /// The profile's skip list (`--skip-list FILE` replaces it).
    pub fn skip_list(&self) -> crate::skip::SkipList {
        crate::skip::SkipList::from_entries(
            self.skip
                .iter()
                .map(|s| (s.prefix.clone(), s.reason.clone())),
        )
    }

    /// What this profile makes of a path relative to the archive root, its skip list included.
    pub fn classify(&self, relative_path: &str) -> Result<Matched, Unmatched> {
        if let Some(reason) = self.skip_reason(relative_path) {
            return Err(Unmatched::Skipped(reason.to_string()));
        }
        self.match_path(relative_path)
    }

    /// What the path rule makes of a path (the skip list not consulted).
    pub fn match_path(&self, relative_path: &str) -> Result<Matched, Unmatched> {
        let no_match = || Unmatched::NoMatch {
            profile: self.id.clone(),
            rule: self.rule_text(),
        };
        let fields = match &self.rule {
            PathRule::Pattern(parts) => match match_pattern(parts, relative_path, &self.choices) {
                Some(fields) => fields,
                // Matched only with a field outside its choices: say which.
                None => {
                    match_pattern(parts, relative_path, &BTreeMap::new()).ok_or_else(no_match)?
                }
            },
            PathRule::Regex(r) => {
                let caps = r.captures(relative_path).ok_or_else(no_match)?;
                r.capture_names()
                    .flatten()
                    .filter_map(|n| Some((n.to_string(), caps.name(n)?.as_str().to_string())))
                    .collect()
            }
        };
        for (field, allowed) in &self.choices {
            let value = fields.get(field).cloned().unwrap_or_default();
            if !allowed.contains(&value) {
                return Err(Unmatched::NotAChoice {
                    field: field.clone(),
                    value,
                    allowed: allowed.join(", "),
                });
            }
        }
        let variable = match &self.variable_field {
            Some(field) => {
                let raw = fields.get(field).cloned().unwrap_or_default();
                let prefix = self
                    .strip_experiment_prefix
                    .as_ref()
                    .and_then(|f| fields.get(f))
                    .map(String::as_str);
                known_variable(&raw, prefix, &self.known_variables).to_string()
            }
            None => EVERY_VARIABLE.to_string(),
        };
        let group_path = render(&self.group_path, &fields);
        floe_wire::check_group_path(&group_path).map_err(Unmatched::BadGroupPath)?;
        Ok(Matched {
            group_path,
            variable,
            fields,
        })
    }
}

/// Resolves `--profile NAME|FILE`: a built-in id, else a TOML file's text read by
/// the caller (this module does no I/O).
pub fn resolve(name: &str, file_text: Option<&str>) -> Result<Profile, ProfileError> {
    if let Some(p) = Profile::builtin(name) {
        return p;
    }
    match file_text {
        Some(text) => Profile::parse(name, text),
        None => Err(ProfileError::NotFound {
            name: name.to_string(),
            builtin: Profile::builtin_ids(),
        }),
    }
}

/// The variable lists of a profile without a `variable` field; lists beside
/// one, or a file's variables with no dimension to concatenate them along, are
/// refused by name.
fn file_variables(file: &ProfileFile) -> Result<Option<VariableSelection>, ProfileError> {
    let conflict = |reason: String| ProfileError::Conflict {
        id: file.id.clone(),
        reason,
    };
    let has_lists = !file.variables.is_empty() || !file.exclude_variables.is_empty();
    if file.variable.is_some() {
        if has_lists {
            return Err(conflict(
                "`variables` and `exclude_variables` choose among the variables of files that hold several; \
                 a profile with a `variable` field takes the one its path names: drop one or the other"
                    .into(),
            ));
        }
        return Ok(None);
    }
    if file.concat.is_none() {
        return Err(conflict(
            "without a `variable` field every data variable of each file is taken, and the files are \
             concatenated: set `concat` (e.g. concat = \"time\") or name the variable's field"
                .into(),
        ));
    }
    if let Some(both) = file
        .variables
        .iter()
        .find(|v| file.exclude_variables.contains(v))
    {
        return Err(conflict(format!(
            "{both} is in both `variables` and `exclude_variables`"
        )));
    }
    Ok(Some(VariableSelection {
        include: file.variables.clone(),
        exclude: file.exclude_variables.clone(),
    }))
}

/// ISMIP6's variable rule: a known name stays; `exp13acabf` in experiment
/// `exp13` is `acabf`; a name with some other experiment's prefix becomes its
/// longest known suffix. Without a known list, the name stays as it is.
fn known_variable<'a>(variable: &'a str, experiment: Option<&str>, known: &[String]) -> &'a str {
    if known.is_empty() || known.iter().any(|k| k == variable) {
        return variable;
    }
    if let Some(rest) = experiment.and_then(|e| variable.strip_prefix(e)) {
        if known.iter().any(|k| k == rest) {
            return rest;
        }
    }
    known
        .iter()
        .filter(|v| variable.ends_with(v.as_str()) && variable.len() > v.len())
        .max_by_key(|v| v.len())
        .map_or(variable, |v| &variable[variable.len() - v.len()..])
}

fn parse_pattern(id: &str, pattern: &str) -> Result<Vec<Vec<Token>>, ProfileError> {
    let bad = |reason: &str| ProfileError::Pattern {
        id: id.to_string(),
        pattern: pattern.to_string(),
        reason: reason.to_string(),
    };
    let mut parts = Vec::new();
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let (tokens, rest) = parse_tokens(part, false).map_err(bad)?;
        if !rest.is_empty() {
            return Err(bad("] without ["));
        }
        parts.push(tokens);
    }
    if parts.is_empty() {
        return Err(bad("empty"));
    }
    Ok(parts)
}

/// The tokens of one part of a pattern, up to the `]` closing an optional
/// group when `inside` (the text after it is returned).
fn parse_tokens(text: &str, inside: bool) -> Result<(Vec<Token>, &str), &'static str> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['{', '[', ']']) {
            Some(0) if rest.starts_with('{') => {
                let close = rest.find('}').ok_or("unclosed {")?;
                let name = &rest[1..close];
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err("a field name is letters, digits and _");
                }
                if matches!(tokens.last(), Some(Token::Field(_))) {
                    return Err(
                        "two fields side by side cannot be told apart: put literal text between them",
                    );
                }
                tokens.push(Token::Field(name.to_string()));
                rest = &rest[close + 1..];
            }
            Some(0) if rest.starts_with('[') => {
                if inside {
                    return Err("optional parts [ ] do not nest");
                }
                let (inner, after) = parse_tokens(&rest[1..], true)?;
                let after = after.strip_prefix(']').ok_or("unclosed [")?;
                if inner.is_empty() {
                    return Err("an empty optional part []");
                }
                tokens.push(Token::Optional(inner));
                rest = after;
            }
            Some(0) => return Ok((tokens, rest)),
            Some(open) => {
                tokens.push(Token::Literal(rest[..open].to_string()));
                rest = &rest[open..];
            }
            None => {
                if rest.contains('}') {
                    return Err("} without {");
                }
                tokens.push(Token::Literal(rest.to_string()));
                rest = "";
            }
        }
    }
    if inside {
        return Err("unclosed [");
    }
    Ok((tokens, rest))
}

fn pattern_text(parts: &[Vec<Token>]) -> String {
    parts
        .iter()
        .map(|tokens| tokens.iter().map(token_text).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

fn token_text(token: &Token) -> String {
    match token {
        Token::Literal(l) => l.clone(),
        Token::Field(f) => format!("{{{f}}}"),
        Token::Optional(inner) => format!("[{}]", inner.iter().map(token_text).collect::<String>()),
    }
}

fn captured_fields(rule: &PathRule) -> Vec<String> {
    let mut names: Vec<String> = match rule {
        PathRule::Pattern(parts) => parts
            .iter()
            .flatten()
            .flat_map(|t| match t {
                Token::Optional(inner) => inner.clone(),
                other => vec![other.clone()],
            })
            .filter_map(|t| match t {
                Token::Field(f) => Some(f),
                _ => None,
            })
            .collect(),
        PathRule::Regex(r) => r.capture_names().flatten().map(str::to_string).collect(),
    };
    names.sort();
    names.dedup();
    names
}

fn template_fields(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(rest[open + 1..open + close].to_string());
        rest = &rest[open + close + 1..];
    }
    out
}

fn render(template: &str, fields: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (name, value) in fields {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// Matches the pattern against the last parts of the path (leading directories,
/// such as `Projection-AIS/`, are free). A field that appears twice must capture
/// the same text both times.
fn match_pattern(
    parts: &[Vec<Token>],
    path: &str,
    choices: &BTreeMap<String, Vec<String>>,
) -> Option<BTreeMap<String, String>> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() < parts.len() {
        return None;
    }
    let tail = &segments[segments.len() - parts.len()..];
    let mut fields = BTreeMap::new();
    for (tokens, segment) in parts.iter().zip(tail) {
        if !match_segment(tokens, segment, choices, &mut fields) {
            return None;
        }
    }
    Some(fields)
}

/// Fields take as little text as lets the rest match (at least one character,
/// and one of the field's choices when it has them); the last field of a part
/// takes the rest.
fn match_segment(
    tokens: &[Token],
    text: &str,
    choices: &BTreeMap<String, Vec<String>>,
    fields: &mut BTreeMap<String, String>,
) -> bool {
    match tokens.split_first() {
        None => text.is_empty(),
        Some((Token::Optional(inner), rest)) => {
            let with: Vec<Token> = inner.iter().chain(rest).cloned().collect();
            let mut trial = fields.clone();
            if match_segment(&with, text, choices, &mut trial) {
                *fields = trial;
                return true;
            }
            match_segment(rest, text, choices, fields)
        }
        Some((Token::Literal(l), rest)) => text
            .strip_prefix(l.as_str())
            .is_some_and(|t| match_segment(rest, t, choices, fields)),
        Some((Token::Field(name), rest)) => {
            for end in text
                .char_indices()
                .map(|(i, _)| i)
                .skip(1)
                .chain([text.len()])
            {
                let value = &text[..end];
                if value.is_empty() {
                    continue;
                }
                if fields.get(name).is_some_and(|v| v != value)
                    || choices
                        .get(name)
                        .is_some_and(|allowed| !allowed.iter().any(|a| a == value))
                {
                    continue;
                }
                let mut trial = fields.clone();
                trial.insert(name.clone(), value.to_string());
                if match_segment(rest, &text[end..], choices, &mut trial) {
                    *fields = trial;
                    return true;
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ismip6() -> Profile {
        Profile::builtin("ismip6")
            .expect("built in")
            .expect("parses")
    }

    fn cmip6() -> Profile {
        Profile::builtin("cmip6")
            .expect("built in")
            .expect("parses")
    }

    #[test]
    fn a_profile_without_a_variable_field_takes_every_variable_of_each_file() {
        let text = include_str!("../../../profiles/mur-sst.toml");
        let p = Profile::parse("mur-sst.toml", text).expect("parses");
        assert_eq!(p.variable_field, None);
        let selection = p.file_variables.clone().expect("a selection");
        assert!(selection.takes("analysed_sst") && !selection.takes("dt_1km_data"));
        let m = p
            .classify("MUR/20020601090000-JPL-L4_GHRSST-SSTfnd-MUR-GLOB-v02.0-fv04.1.nc")
            .expect("matches");
        assert_eq!(m.group_path, "MUR");
        assert_eq!(m.variable, EVERY_VARIABLE);
    }

    #[test]
    fn variable_lists_that_contradict_the_profile_are_refused_by_name() {
        let base = "id = \"x\"\nversion = 1\npattern = \"{model}/{rest}.nc\"\ngroup_path = \"{model}\"\ntime = \"cf-exact\"\n";
        let cases = [
            (
                "variable = \"rest\"\nconcat = \"time\"\nvariables = [\"a\"]\n",
                "drop one or the other",
            ),
            ("", "set `concat`"),
            (
                "concat = \"time\"\nvariables = [\"a\"]\nexclude_variables = [\"a\"]\n",
                "a is in both",
            ),
        ];
        for (extra, words) in cases {
            let e = Profile::parse("x.toml", &format!("{base}{extra}")).expect_err(extra);
            assert!(matches!(e, ProfileError::Conflict { .. }), "{e}");
            assert!(e.to_string().contains(words), "{e}");
        }
    }

    #[test]
    fn the_ismip6_profile_reads_the_archive_layout() {
        let p = ismip6();
        for (path, group, variable, sheet) in [
            (
                "Projection-AIS/ILTS_PIK/SICOPOLIS1/hist_std/acabf_AIS_ILTS_PIK_SICOPOLIS_hist_std.nc",
                "ILTS_PIK_SICOPOLIS1/hist_std",
                "acabf",
                "AIS",
            ),
            (
                "Projection-AIS/UCIJPL/ISSM/exp13/exp13acabf_AIS_UCIJPL_ISSM_exp13.nc",
                "UCIJPL_ISSM/exp13",
                "acabf",
                "AIS",
            ),
            (
                "UCIJPL/ISSM/exp13/exp05lithk_AIS_UCIJPL_ISSM_exp13.nc",
                "UCIJPL_ISSM/exp13",
                "lithk",
                "AIS",
            ),
            (
                "Projection-GIS/AWI/ISSM1/exp05/lithk_GIS_AWI_ISSM1_exp05.nc",
                "AWI_ISSM1/exp05",
                "lithk",
                "GIS",
            ),
            (
                "AWI/PISM1/exp05/unknownvar_AIS_AWI_PISM1_exp05.nc",
                "AWI_PISM1/exp05",
                "unknownvar",
                "AIS",
            ),
        ] {
            let m = p.classify(path).expect("profile");
            assert_eq!(m.group_path, group, "{path}");
            assert_eq!(m.variable, variable, "{path}");
            assert_eq!(m.fields["ice_sheet"], sheet, "{path}");
        }
        for path in ["a/b/c/lithk.nc", "b/c/x_AIS_.nc", "a/b/c/lithk_XIS_a.nc"] {
            assert!(p.classify(path).is_err(), "{path}");
        }
        assert!(matches!(
            p.classify("NCAR/CISM/expD12/lithk_AIS_NCAR_CISM_expD12.nc"),
            Err(Unmatched::Skipped(_))
        ));
    }

    #[test]
    fn the_cmip6_profile_groups_a_dataset_and_names_the_variable() {
        let p = cmip6();
        let m = p
            .classify("CMIP6/ScenarioMIP/NCAR/CESM2/ssp585/r1i1p1f1/Amon/tas/gn/v20190730/tas_Amon_CESM2_ssp585_r1i1p1f1_gn_201501-206412.nc")
            .expect("matches");
        assert_eq!(m.group_path, "CESM2/ssp585/r1i1p1f1/Amon/gn");
        assert_eq!(m.variable, "tas");
        assert_eq!(m.fields["time_range"], "201501-206412");
        assert_eq!(p.concat.as_deref(), Some("time"));
        assert_eq!(p.time, TimePolicy::CfExact);
        // The directory's variable and the file name's must agree.
        let e = p
            .classify("ScenarioMIP/NCAR/CESM2/ssp585/r1i1p1f1/Amon/tas/gn/v1/pr_Amon_CESM2_ssp585_r1i1p1f1_gn_201501-206412.nc")
            .expect_err("variable differs");
        assert!(e.to_string().contains("cmip6"), "{e}");
        // Fixed fields have no time range; the optional part is skipped.
        let fx = p
            .classify("CMIP6/CMIP/NCAR/CESM2/historical/r1i1p1f1/fx/areacella/gn/v20190308/areacella_fx_CESM2_historical_r1i1p1f1_gn.nc")
            .expect("an fx file matches");
        assert_eq!(fx.group_path, "CESM2/historical/r1i1p1f1/fx/gn");
        assert_eq!(fx.variable, "areacella");
        assert!(!fx.fields.contains_key("time_range"));
        assert!(
            p.rule_text().contains("{grid}[_{time_range}].nc"),
            "{}",
            p.rule_text()
        );
    }

    #[test]
    fn optional_parts_match_when_they_can_and_malformed_ones_are_refused() {
        let base = "id = \"x\"\nversion = 1\ngroup_path = \"{a}\"\nvariable = \"v\"\ntime = \"cf-exact\"\n";
        let p = Profile::parse(
            "x.toml",
            &format!("{base}pattern = \"{{a}}/{{v}}[_{{r}}][-{{s}}].nc\"\n"),
        )
        .expect("optional parts");
        let m = p.classify("g/tas_1-2.nc").expect("both");
        assert_eq!(
            (
                m.fields["v"].as_str(),
                m.fields["r"].as_str(),
                m.fields["s"].as_str()
            ),
            ("tas", "1", "2")
        );
        let m = p.classify("g/tas-2.nc").expect("second only");
        assert_eq!(
            (m.fields["v"].as_str(), m.fields["s"].as_str()),
            ("tas", "2")
        );
        assert!(!m.fields.contains_key("r"));
        for (pattern, why) in [
            ("{a}/{v}[_{r}.nc", "unclosed ["),
            ("{a}/{v}]_{r}.nc", "] without ["),
            ("{a}/{v}[_[{r}]].nc", "do not nest"),
            ("{a}/{v}[].nc", "empty optional"),
        ] {
            let e = Profile::parse("x.toml", &format!("{base}pattern = \"{pattern}\"\n"))
                .expect_err(pattern);
            assert!(e.to_string().contains(why), "{pattern}: {e}");
        }
    }

    #[test]
    fn the_files_profile_makes_a_group_of_each_file_at_its_path() {
        let p = Profile::builtin("files").expect("built in").expect("valid");
        let m = p.classify("obs/2020/sst.v2.nc").expect("any path");
        assert_eq!(m.group_path, "obs/2020/sst.v2");
        assert_eq!(m.variable, EVERY_VARIABLE);
    }

    #[test]
    fn the_readme_example_profile_is_valid_and_does_what_it_says() {
        let p = Profile::parse(
            "profiles/example.toml",
            include_str!("../../../profiles/example.toml"),
        )
        .expect("the example parses");
        assert_eq!(p.tag(), "example-yearly@1");
        let m = p
            .classify("archive/CESM2/ssp585/tas_CESM2_ssp585_2015.nc")
            .expect("matches");
        assert_eq!(
            (m.group_path.as_str(), m.variable.as_str()),
            ("CESM2/ssp585", "tas")
        );
        assert!(matches!(
            p.classify("CESM2/ssp370/tas_CESM2_ssp370_2015.nc"),
            Err(Unmatched::NotAChoice { .. })
        ));
        assert!(matches!(
            p.classify("CESM2/ssp245/tas_CESM2_ssp245_2015.nc"),
            Err(Unmatched::Skipped(_))
        ));
        assert!(matches!(
            p.classify("CESM2/ssp585/tas_MIROC6_ssp585_2015.nc"),
            Err(Unmatched::NoMatch { .. })
        ));
    }

    #[test]
    fn patterns_capture_fields_and_refuse_what_cannot_be_told_apart() {
        let parts = parse_pattern("t", "{a}/{b}_{c}.nc").expect("pattern");
        let none = BTreeMap::new();
        let f = match_pattern(&parts, "x/y/one/two_three_four.nc", &none).expect("match");
        assert_eq!(f["a"], "one");
        assert_eq!(f["b"], "two");
        assert_eq!(f["c"], "three_four");
        assert!(match_pattern(&parts, "two_three.txt", &none).is_none());
        let sheets = BTreeMap::from([("c".to_string(), vec!["AIS".to_string()])]);
        let f = match_pattern(&parts, "d/v_x_AIS.nc", &sheets).expect("choice-constrained match");
        assert_eq!((f["b"].as_str(), f["c"].as_str()), ("v_x", "AIS"));
        assert!(parse_pattern("t", "{a}{b}").is_err());
        assert!(parse_pattern("t", "{a").is_err());
        assert!(parse_pattern("t", "a}").is_err());
    }

    #[test]
    fn profile_files_are_checked_when_read() {
        let base = "id = \"x\"\nversion = 1\ngroup_path = \"{a}\"\nvariable = \"v\"\ntime = \"cf-exact\"\n";
        let ok = Profile::parse("x.toml", &format!("{base}pattern = \"{{a}}/{{v}}.nc\"\n"))
            .expect("valid");
        assert_eq!(ok.classify("g/tas.nc").expect("match").group_path, "g");
        let e = Profile::parse("x.toml", &format!("{base}pattern = \"{{a}}/{{w}}.nc\"\n"))
            .expect_err("variable not captured");
        assert!(e.to_string().contains("variable uses field {v}"), "{e}");
        let e = Profile::parse("x.toml", base).expect_err("no rule");
        assert!(matches!(e, ProfileError::PathRule { .. }), "{e}");
        let e = Profile::parse(
            "x.toml",
            &format!("{base}regex = '(?P<a>[^/]+)/(?P<v>[^/]+)\\.nc$'\nbogus = 1\n"),
        )
        .expect_err("unknown key");
        assert!(e.to_string().contains("bogus"), "{e}");
        let r = Profile::parse(
            "x.toml",
            &format!("{base}regex = '(?P<a>[^/]+)/(?P<v>[^/_]+)_.*\\.nc$'\n"),
        )
        .expect("regex profile");
        let m = r.classify("d/g/tas_x.nc").expect("regex match");
        assert_eq!((m.group_path.as_str(), m.variable.as_str()), ("g", "tas"));
        assert!(matches!(
            resolve("nope", None),
            Err(ProfileError::NotFound { .. })
        ));
    }
}
