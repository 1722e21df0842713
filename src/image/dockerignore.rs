//! `.dockerignore` semantics, as implemented by the Docker CLI and moby's
//! `patternmatcher` package.
//!
//! # File format
//!
//! * One pattern per line. A line whose **first column** is `#` is a comment
//!   (an indented `#` is an ordinary pattern character, as in Docker). A UTF-8
//!   byte-order mark at the start of the file is ignored.
//! * Leading and trailing whitespace is trimmed and blank lines are skipped.
//! * A leading `!` turns the pattern into an *exception* (re-include).
//! * Each pattern is cleaned like Go's `filepath.Clean` (`./foo` → `foo`,
//!   `a//b/../c` → `a/c`, `dir/` → `dir`) and a leading `/` is dropped.
//!
//! # Pattern syntax
//!
//! Go's `filepath.Match` plus `**`:
//!
//! | syntax   | matches                                                       |
//! |----------|---------------------------------------------------------------|
//! | `*`      | any run of characters except `/`                              |
//! | `?`      | one character except `/`                                      |
//! | `[a-z]`  | one character from the class; `[^…]` negates; `\` escapes     |
//! | `\c`     | the character `c` literally                                   |
//! | `**`     | any number of directories, including none (`**/x`, `a/**/b`)  |
//!
//! Patterns are anchored at the context root (`foo` does not match `a/foo`,
//! `*.md` does not match `docs/x.md`), and a pattern that matches a directory
//! also matches everything below it. Patterns are evaluated in order and the
//! last one that matches a path (or one of its parent directories) wins.
//!
//! Like moby, patterns made only of literal text plus a leading or trailing
//! `**` take a fast path that compares strings instead of running a regex. The
//! leading-`**` fast path is a plain suffix test, so `**.log` matches
//! `a/b/c.log` (not just `.log`): this module reproduces that.
//!
//! Where moby's glob-to-regex translation leaks Go regex syntax (`\d` becoming
//! a digit class, `*` inside `[...]`, a stray `^` acting as an anchor), this
//! module follows the documented `filepath.Match` meaning instead: escaped
//! and bracketed characters are always literal. A reversed class range such
//! as `[z-a]`, which makes Docker fail when it first matches a path, is
//! rejected by [`DockerIgnore::parse`].

use std::fmt;
use std::iter::Peekable;
use std::str::Chars;

use regex::Regex;

/// Parsed .dockerignore: ordered patterns, `!` exceptions, last match wins.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// A `.dockerignore` line that is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// The pattern is not valid `filepath.Match` syntax (for example an
    /// unterminated `[` or a trailing `\`).
    Syntax {
        /// 1-based line number in the `.dockerignore` file.
        line: usize,
        /// The offending line, trimmed.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `!` with no pattern after it (Docker: `illegal exclusion pattern: "!"`).
    EmptyException {
        /// 1-based line number in the `.dockerignore` file.
        line: usize,
        /// The offending line, trimmed.
        pattern: String,
    },
}

impl PatternError {
    /// 1-based line number of the offending pattern.
    pub fn line(&self) -> usize {
        match self {
            PatternError::Syntax { line, .. } | PatternError::EmptyException { line, .. } => *line,
        }
    }

    /// The offending pattern as written in the file (trimmed).
    pub fn pattern(&self) -> &str {
        match self {
            PatternError::Syntax { pattern, .. } | PatternError::EmptyException { pattern, .. } => {
                pattern
            }
        }
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Syntax {
                line,
                pattern,
                reason,
            } => write!(
                f,
                ".dockerignore line {line}: invalid pattern `{pattern}`: {reason}"
            ),
            PatternError::EmptyException { line, pattern } => write!(
                f,
                ".dockerignore line {line}: invalid pattern `{pattern}`: `!` must be followed by a pattern"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

impl DockerIgnore {
    /// Parse file contents: one pattern per line; lines starting with `#` are comments; blank lines ignored;
    /// whitespace trimmed; `!` prefix = exception; patterns are cleaned like Go's filepath.Clean; a leading `/` is dropped;
    /// Errors on an invalid pattern (e.g. unterminated `[`), naming the line.
    pub fn parse(contents: &str) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for (index, line) in contents.lines().enumerate() {
            let line = if index == 0 {
                line.strip_prefix('\u{feff}').unwrap_or(line)
            } else {
                line
            };
            // Docker only recognises `#` in the first column, before trimming.
            if line.starts_with('#') {
                continue;
            }
            let Some(entry) = normalize_entry(line) else {
                continue;
            };
            let pattern = Pattern::compile(&entry).map_err(|invalid| {
                let line_number = index + 1;
                let pattern = line.trim().to_owned();
                match invalid {
                    Invalid::Syntax(reason) => PatternError::Syntax {
                        line: line_number,
                        pattern,
                        reason,
                    },
                    Invalid::EmptyException => PatternError::EmptyException {
                        line: line_number,
                        pattern,
                    },
                }
            })?;
            patterns.push(pattern);
        }
        Ok(Self { patterns })
    }

    /// Empty matcher that excludes nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Add an exception pattern at the end (used to force-keep the Dockerfile and .dockerignore, as the Docker CLI's
    /// TrimBuildFilesFromExcludes does: only appended if the path would otherwise be excluded).
    ///
    /// `path` is cleaned like a pattern (`./Dockerfile` → `Dockerfile`) and
    /// matched literally: glob characters in a file name are not wildcards.
    pub fn keep(&mut self, path: &str) {
        let cleaned = clean_path(path);
        let path = cleaned.trim_start_matches('/');
        if path.is_empty() || path == "." || !self.is_excluded(path) {
            return;
        }
        self.patterns.push(Pattern::literal_exception(path));
    }

    /// Whether a path (relative to the context root, `/`-separated, no leading `./`) is excluded: true if it, or any
    /// of its parent directories, matches — following moby's MatchesOrParentMatches: evaluate every pattern in order,
    /// a non-exception pattern that matches the path or one of its parents sets excluded=true, an exception pattern
    /// that matches sets excluded=false; last match wins.
    ///
    /// A leading `./` and trailing `/` are tolerated. The context root itself
    /// (`""` or `"."`) is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = normalize_query(rel_path);
        if path.is_empty() {
            return false;
        }
        let mut excluded = false;
        for pattern in &self.patterns {
            // A pattern can only change the outcome if its polarity differs
            // from the current state, so skip the others (as moby does).
            if pattern.exception != excluded {
                continue;
            }
            if pattern.matches_path_or_parent(path) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// For directory pruning during a walk: true when the directory is excluded AND no exception pattern could
    /// possibly match something inside it (so the walker may skip the whole subtree).
    ///
    /// The Docker CLI skips an excluded directory when there are no exception
    /// patterns, or when no exception pattern's text starts with `dir/`. That
    /// literal prefix test misses wildcard exceptions (`!**/*.go`, `!*/keep`)
    /// and would drop files that [`is_excluded`](Self::is_excluded) re-includes.
    /// This method answers the same question soundly instead: it returns true
    /// only if every path below `rel_dir` is excluded, so pruning never changes
    /// the walk's result. Concretely, only exceptions *after* the last pattern
    /// matching the directory can re-include something below it, and such an
    /// exception blocks pruning if its leading path segments match the
    /// directory's components and it has more segments left over. Exceptions
    /// containing `**`, an escaped `/`, or a class that can match `/` are
    /// assumed to match anywhere.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        let dir = normalize_query(rel_dir);
        if dir.is_empty() {
            return false;
        }
        // Last match wins: the directory is excluded iff the last pattern
        // matching it (or a parent) is not an exception.
        let Some(last) = self
            .patterns
            .iter()
            .rposition(|pattern| pattern.matches_path_or_parent(dir))
        else {
            return false;
        };
        if self.patterns[last].exception {
            return false;
        }
        let components: Vec<&str> = dir.split('/').collect();
        !self.patterns[last + 1..]
            .iter()
            .any(|pattern| pattern.exception && pattern.may_match_below(&components))
    }

    /// True if there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Why a single pattern failed to compile (the caller adds the line).
enum Invalid {
    Syntax(&'static str),
    EmptyException,
}

const UNTERMINATED_CLASS: &str = "unterminated character class `[`";

/// One compiled pattern.
#[derive(Clone)]
struct Pattern {
    /// Cleaned pattern text, without the `!`.
    text: String,
    /// `!` pattern: re-includes what it matches.
    exception: bool,
    matcher: Matcher,
    /// For exceptions whose matches never cross a `/` except at the pattern's
    /// own separators: one matcher per `/`-separated segment, used by
    /// [`DockerIgnore::can_skip_dir`]. `None` means "may match anywhere".
    segments: Option<Vec<Matcher>>,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bang = if self.exception { "!" } else { "" };
        write!(f, "{bang}{}", self.text)
    }
}

impl Pattern {
    /// Compile one entry as produced by [`normalize_entry`] (moby's `New`).
    fn compile(entry: &str) -> Result<Self, Invalid> {
        let cleaned = clean_path(entry.trim());
        let (exception, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(Invalid::EmptyException),
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        let tokens = tokenize(text).map_err(Invalid::Syntax)?;
        let matcher = Matcher::from_tokens(&tokens).map_err(Invalid::Syntax)?;
        let segments = if exception {
            segment_matchers(&tokens).map_err(Invalid::Syntax)?
        } else {
            None
        };
        Ok(Self {
            text: text.to_owned(),
            exception,
            matcher,
            segments,
        })
    }

    /// An exception matching exactly `path`, with no wildcards.
    fn literal_exception(path: &str) -> Self {
        let mut text = String::with_capacity(path.len());
        for ch in path.chars() {
            if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
                text.push('\\');
            }
            text.push(ch);
        }
        Self {
            text,
            exception: true,
            matcher: Matcher::Exact(path.to_owned()),
            segments: Some(
                path.split('/')
                    .map(|segment| Matcher::Exact(segment.to_owned()))
                    .collect(),
            ),
        }
    }

    /// Whether the pattern matches `path` or one of its parent directories.
    fn matches_path_or_parent(&self, path: &str) -> bool {
        self.matcher.is_match(path)
            || path
                .match_indices('/')
                .any(|(end, _)| self.matcher.is_match(&path[..end]))
    }

    /// Whether this (exception) pattern could match some path strictly below
    /// the directory made of `components`.
    fn may_match_below(&self, components: &[&str]) -> bool {
        match &self.segments {
            None => true,
            Some(segments) => {
                segments.len() > components.len()
                    && segments
                        .iter()
                        .zip(components)
                        .all(|(segment, component)| segment.is_match(component))
            }
        }
    }
}

/// How a pattern is matched; mirrors moby's exact/prefix/suffix/regex split.
#[derive(Clone)]
enum Matcher {
    /// Only literal text: string equality.
    Exact(String),
    /// Literal text then a trailing `**`: `starts_with`.
    Prefix(String),
    /// A leading `**` then literal text (including any `/` after the `**`):
    /// `ends_with`, or equality with the text after that `/` (`**/foo` ↔ `foo`).
    Suffix(String),
    /// Anything else.
    Regex(Regex),
}

impl Matcher {
    fn from_tokens(tokens: &[Token]) -> Result<Self, &'static str> {
        let all_plain = |tokens: &[Token]| tokens.iter().all(Token::is_plain_literal);
        Ok(match tokens {
            [Token::DoubleStar { slash }, rest @ ..] if all_plain(rest) => {
                let mut suffix = String::from(if *slash { "/" } else { "" });
                suffix.extend(rest.iter().filter_map(Token::literal));
                Matcher::Suffix(suffix)
            }
            [rest @ .., Token::DoubleStar { .. }] if all_plain(rest) => {
                Matcher::Prefix(rest.iter().filter_map(Token::literal).collect())
            }
            _ if all_plain(tokens) => {
                Matcher::Exact(tokens.iter().filter_map(Token::literal).collect())
            }
            _ => Matcher::Regex(
                Regex::new(&regex_source(tokens)).map_err(|_| "pattern is too complex")?,
            ),
        })
    }

    fn is_match(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(text) => path == text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Regex(regex) => regex.is_match(path),
        }
    }
}

/// A lexical element of a pattern.
enum Token {
    /// A literal character. `plain` is false for `\`-escaped characters and a
    /// bare `]`, which force moby onto its regex path (same meaning, but it
    /// rules out the exact/prefix/suffix fast paths).
    Literal { ch: char, plain: bool },
    /// `*`
    Star,
    /// `?`
    Question,
    /// `**`, with `slash` set if a following `/` was folded into it.
    DoubleStar { slash: bool },
    /// `[...]`
    Class(CharClass),
}

impl Token {
    fn is_plain_literal(&self) -> bool {
        matches!(self, Token::Literal { plain: true, .. })
    }

    fn literal(&self) -> Option<char> {
        match self {
            Token::Literal { ch, .. } => Some(*ch),
            _ => None,
        }
    }

    /// Whether this token can match a `/` other than as the pattern's own
    /// plain path separator.
    fn may_match_separator(&self) -> bool {
        match self {
            Token::DoubleStar { .. } => true,
            Token::Literal { ch, plain } => *ch == '/' && !plain,
            Token::Class(class) => class.matches('/'),
            Token::Star | Token::Question => false,
        }
    }

    fn is_separator(&self) -> bool {
        matches!(
            self,
            Token::Literal {
                ch: '/',
                plain: true
            }
        )
    }
}

/// A `[...]` character class (which, as in Go, may match `/`).
struct CharClass {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn matches(&self, ch: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi) != self.negated
    }
}

/// Split a cleaned pattern into tokens, validating it with the rules of Go's
/// `filepath.Match` and grouping `*`/`**` the way moby does.
fn tokenize(pattern: &str) -> Result<Vec<Token>, &'static str> {
    let mut chars = pattern.chars().peekable();
    let mut tokens = Vec::new();
    while let Some(ch) = chars.next() {
        tokens.push(match ch {
            '*' if chars.next_if_eq(&'*').is_some() => Token::DoubleStar {
                slash: chars.next_if_eq(&'/').is_some(),
            },
            '*' => Token::Star,
            '?' => Token::Question,
            '\\' => Token::Literal {
                ch: chars.next().ok_or("trailing `\\` escapes nothing")?,
                plain: false,
            },
            '[' => Token::Class(parse_class(&mut chars)?),
            ']' => Token::Literal { ch, plain: false },
            _ => Token::Literal { ch, plain: true },
        });
    }
    Ok(tokens)
}

/// Parse a class body after its `[`: `[^]lo[-hi]...]`, at least one range.
fn parse_class(chars: &mut Peekable<Chars<'_>>) -> Result<CharClass, &'static str> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(CharClass { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = if chars.next_if_eq(&'-').is_some() {
            class_char(chars)?
        } else {
            lo
        };
        if lo > hi {
            return Err("character class range is out of order");
        }
        ranges.push((lo, hi));
    }
}

/// One possibly escaped class character. As in Go, an unescaped `-` or `]`
/// is not allowed here and the class must continue after it.
fn class_char(chars: &mut Peekable<Chars<'_>>) -> Result<char, &'static str> {
    let ch = match chars.next() {
        None => return Err(UNTERMINATED_CLASS),
        Some('-' | ']') => return Err("character class needs a character before `-` or `]`"),
        Some('\\') => chars.next().ok_or(UNTERMINATED_CLASS)?,
        Some(ch) => ch,
    };
    if chars.peek().is_none() {
        return Err(UNTERMINATED_CLASS);
    }
    Ok(ch)
}

/// The anchored regex for a token sequence (moby's translation, with
/// literals and classes always taken literally).
fn regex_source(tokens: &[Token]) -> String {
    let mut source = String::from("^");
    for (index, token) in tokens.iter().enumerate() {
        match token {
            Token::Literal { ch, .. } => {
                source.push_str(&regex::escape(ch.encode_utf8(&mut [0; 4])));
            }
            Token::Star => source.push_str("[^/]*"),
            Token::Question => source.push_str("[^/]"),
            // A trailing `**` matches anything; elsewhere it matches any
            // number of whole directories, including none.
            Token::DoubleStar { .. } if index + 1 == tokens.len() => source.push_str(".*"),
            Token::DoubleStar { .. } => source.push_str("(?:.*/)?"),
            Token::Class(class) => {
                source.push('[');
                if class.negated {
                    source.push('^');
                }
                for &(lo, hi) in &class.ranges {
                    source.push_str(&format!("\\x{{{:X}}}", u32::from(lo)));
                    if hi != lo {
                        source.push_str(&format!("-\\x{{{:X}}}", u32::from(hi)));
                    }
                }
                source.push(']');
            }
        }
    }
    source.push('$');
    source
}

/// Per-segment matchers for an exception pattern, or `None` when its matches
/// may span separators in ways a segment-by-segment comparison cannot model.
fn segment_matchers(tokens: &[Token]) -> Result<Option<Vec<Matcher>>, &'static str> {
    if tokens.iter().any(Token::may_match_separator) {
        return Ok(None);
    }
    tokens
        .split(Token::is_separator)
        .map(Matcher::from_tokens)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Pre-process one line the way Docker's `ignorefile.ReadAll` does: trim,
/// split off `!`, clean, drop a leading `/`. `None` for blank lines.
fn normalize_entry(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (bang, body) = match line.strip_prefix('!') {
        Some(rest) => ("!", rest.trim()),
        None => ("", line),
    };
    let mut body = if body.is_empty() {
        String::new()
    } else {
        clean_path(body)
    };
    if body.len() > 1 && body.starts_with('/') {
        body.remove(0);
    }
    Some(format!("{bang}{body}"))
}

/// Go's `filepath.Clean` for `/`-separated paths: collapse repeated `/`,
/// drop `.` elements, resolve `..` against preceding elements, strip any
/// trailing `/`; an empty result becomes `.`.
fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// Tolerate `./` prefixes and trailing `/` on queried paths; `.` is the root.
fn normalize_query(path: &str) -> &str {
    let mut path = path;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let path = path.trim_end_matches('/');
    if path == "." {
        ""
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.dockerignore` file and paths it must exclude and keep.
    struct Case {
        what: &'static str,
        dockerignore: &'static str,
        excluded: &'static [&'static str],
        included: &'static [&'static str],
    }

    #[rustfmt::skip]
    const MATCHING: &[Case] = &[
        // Docker documentation examples.
        Case { what: "`# comment` lines are ignored",
               dockerignore: "# comment\n",
               excluded: &[], included: &["# comment", "comment"] },
        Case { what: "`*/temp*` matches temp* one level below the root",
               dockerignore: "*/temp*",
               excluded: &["somedir/temporary.txt", "somedir/temp", "somedir/temp/file"],
               included: &["temp", "temporary.txt", "somedir/subdir/temporary.txt", "somedir/xtemp"] },
        Case { what: "`*/*/temp*` matches temp* two levels below the root",
               dockerignore: "*/*/temp*",
               excluded: &["somedir/subdir/temporary.txt", "a/b/temp/c"],
               included: &["somedir/temporary.txt", "temp", "a/b/c/temp"] },
        Case { what: "`temp?` matches temp plus one character in the root",
               dockerignore: "temp?",
               excluded: &["tempa", "tempb", "tempa/file"],
               included: &["temp", "tempab", "dir/tempa"] },
        Case { what: "`**/*.go` matches .go files at any depth, root included",
               dockerignore: "**/*.go",
               excluded: &["main.go", "cmd/app/main.go", "pkg.go/file"],
               included: &["main.go.txt", "go", "README.md"] },
        Case { what: "`!README.md` re-includes one markdown file",
               dockerignore: "*.md\n!README.md",
               excluded: &["CHANGELOG.md"], included: &["README.md", "docs/x.md"] },
        Case { what: "last match wins: README-secret.md stays excluded",
               dockerignore: "*.md\n!README*.md\nREADME-secret.md",
               excluded: &["CHANGELOG.md", "README-secret.md"],
               included: &["README.md", "README-foo.md"] },
        Case { what: "last match wins: a later `!README*.md` overrides README-secret.md",
               dockerignore: "*.md\nREADME-secret.md\n!README*.md",
               excluded: &["CHANGELOG.md"], included: &["README.md", "README-secret.md"] },
        // Anchoring and parent directories.
        Case { what: "patterns are anchored at the context root",
               dockerignore: "foo\n*.md",
               excluded: &["foo", "foo/bar", "x.md"],
               included: &["a/foo", "foobar", "docs/x.md"] },
        Case { what: "a matched directory excludes everything below it",
               dockerignore: "node_modules",
               excluded: &["node_modules", "node_modules/a/b.js"],
               included: &["src/node_modules", "node_modules.txt"] },
        Case { what: "`*` does not cross `/`",
               dockerignore: "src/*.rs",
               excluded: &["src/main.rs"], included: &["src/bin/x.rs", "main.rs"] },
        Case { what: "`?` does not match `/`",
               dockerignore: "a?b",
               excluded: &["axb"], included: &["a/b", "ab"] },
        // Exceptions.
        Case { what: "`!` re-includes a file inside an excluded directory",
               dockerignore: "build\n!build/keep.txt",
               excluded: &["build", "build/out.o", "build/sub/keep.txt"],
               included: &["build/keep.txt"] },
        Case { what: "an exception matching a parent re-includes the subtree",
               dockerignore: "*\n!src",
               excluded: &["Cargo.toml", "target/debug/app"],
               included: &["src", "src/main.rs", "src/a/b.rs"] },
        Case { what: "an exception before the exclusion has no effect",
               dockerignore: "!keep.txt\n*.txt",
               excluded: &["keep.txt", "other.txt"], included: &[] },
        Case { what: "whitespace between `!` and the pattern is trimmed",
               dockerignore: "*\n!   keep",
               excluded: &["other"], included: &["keep"] },
        // Pre-processing.
        Case { what: "`#` is a comment only in the first column",
               dockerignore: "  #notes",
               excluded: &["#notes"], included: &["notes"] },
        Case { what: "leading slash is dropped",
               dockerignore: "/foo/bar",
               excluded: &["foo/bar", "foo/bar/baz"], included: &["foo", "x/foo/bar"] },
        Case { what: "`./foo` is cleaned to `foo`",
               dockerignore: "./foo",
               excluded: &["foo", "foo/x"], included: &["x/foo"] },
        Case { what: "`//`, `.` and `..` are cleaned like filepath.Clean",
               dockerignore: "a//b/./../c",
               excluded: &["a/c"], included: &["a/b", "c"] },
        Case { what: "trailing slash `dir/` matches the directory (or a file of that name)",
               dockerignore: "logs/",
               excluded: &["logs", "logs/app.log"], included: &["logsx", "a/logs"] },
        Case { what: "surrounding whitespace, blank lines and CRLF are ignored",
               dockerignore: "  foo  \r\n\r\n\t\r\nbar\r\n",
               excluded: &["foo", "bar"], included: &["foo  "] },
        Case { what: "a UTF-8 BOM at the start of the file is ignored",
               dockerignore: "\u{feff}foo",
               excluded: &["foo"], included: &[] },
        Case { what: "an empty file excludes nothing",
               dockerignore: "",
               excluded: &[], included: &["a", "a/b"] },
        Case { what: "the pattern `.` excludes nothing",
               dockerignore: ".",
               excluded: &[], included: &["a", "a/b", "."] },
        // `**`.
        Case { what: "`**` alone matches everything",
               dockerignore: "**",
               excluded: &["a", "a/b/c", ".dockerignore"], included: &[] },
        Case { what: "`dir/**` matches everything under dir, but not dir itself",
               dockerignore: "dir/**",
               excluded: &["dir/a", "dir/a/b"], included: &["dir", "dirx/a"] },
        Case { what: "`**/dir` matches dir at any depth",
               dockerignore: "**/dir",
               excluded: &["dir", "a/dir", "a/b/dir/file"], included: &["adir", "dirx"] },
        Case { what: "`a/**/b` matches zero or more directories in between",
               dockerignore: "a/**/b",
               excluded: &["a/b", "a/x/b", "a/x/y/b/c"], included: &["a/xb", "b"] },
        Case { what: "`**` without a slash is moby's plain suffix match",
               dockerignore: "**.log",
               excluded: &["x.log", "a/b/c.log"], included: &["x.logs"] },
        Case { what: "`**` then `*` keeps segment semantics",
               dockerignore: "**/*.tmp\n!**/keep/*.tmp",
               excluded: &["a.tmp", "x/y.tmp"], included: &["keep/a.tmp", "x/keep/b.tmp"] },
        // Character classes and escapes.
        Case { what: "character class with a range",
               dockerignore: "file[0-9].txt",
               excluded: &["file1.txt"], included: &["filea.txt", "file10.txt"] },
        Case { what: "negated character class",
               dockerignore: "file[^0-9].txt",
               excluded: &["filea.txt"], included: &["file1.txt"] },
        Case { what: "character class listing characters and an escaped `]`",
               dockerignore: r"x[ab\]]",
               excluded: &["xa", "xb", "x]"], included: &["xc", "x\\"] },
        Case { what: "`*` and `?` inside a class are literal",
               dockerignore: "v[*?]",
               excluded: &["v*", "v?"], included: &["vx"] },
        Case { what: "escaped `*` matches a literal star",
               dockerignore: r"\*.txt",
               excluded: &["*.txt"], included: &["a.txt"] },
        Case { what: "escaped `?` and escaped letter are literal",
               dockerignore: r"data\?\d",
               excluded: &["data?d"], included: &["datax1", "data?1"] },
        Case { what: "regex metacharacters are literal",
               dockerignore: "a+b(c)|{d}$.txt\n^x",
               excluded: &["a+b(c)|{d}$.txt", "^x"], included: &["aab(c)|{d}$.txt", "x"] },
        // Query normalisation.
        Case { what: "queried paths may carry `./` or a trailing `/`",
               dockerignore: "foo",
               excluded: &["./foo", "foo/", "./foo/bar"], included: &["", ".", "./"] },
    ];

    #[test]
    fn matching_spec() {
        let mut failures = Vec::new();
        for case in MATCHING {
            let ignore = DockerIgnore::parse(case.dockerignore)
                .unwrap_or_else(|err| panic!("{}: {err}", case.what));
            for path in case.excluded {
                if !ignore.is_excluded(path) {
                    failures.push(format!("{}: `{path}` should be excluded", case.what));
                }
            }
            for path in case.included {
                if ignore.is_excluded(path) {
                    failures.push(format!("{}: `{path}` should be included", case.what));
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    /// Whether a walker may prune a directory.
    struct SkipCase {
        what: &'static str,
        dockerignore: &'static str,
        dir: &'static str,
        skip: bool,
    }

    #[rustfmt::skip]
    const SKIPPING: &[SkipCase] = &[
        SkipCase { what: "excluded dir, no exceptions: skip",
                   dockerignore: "node_modules", dir: "node_modules", skip: true },
        SkipCase { what: "dir below an excluded dir: skip",
                   dockerignore: "node_modules", dir: "node_modules/a/b", skip: true },
        SkipCase { what: "dir that is not excluded: walk",
                   dockerignore: "node_modules", dir: "src", skip: false },
        SkipCase { what: "the context root is never skipped",
                   dockerignore: "**", dir: "", skip: false },
        SkipCase { what: "exception inside the dir: walk",
                   dockerignore: "build\n!build/keep.txt", dir: "build", skip: false },
        SkipCase { what: "exception elsewhere: skip",
                   dockerignore: "build\n!src/keep.txt", dir: "build", skip: true },
        SkipCase { what: "exception deep inside: walk the dirs leading to it",
                   dockerignore: "build\n!build/a/b/keep", dir: "build/a", skip: false },
        SkipCase { what: "exception deep inside: skip sibling dirs",
                   dockerignore: "build\n!build/a/b/keep", dir: "build/c", skip: true },
        SkipCase { what: "exception naming the dir itself, later re-excluded: skip",
                   dockerignore: "build\n!build\nbuild", dir: "build", skip: true },
        SkipCase { what: "exception with a wildcard segment that fits: walk",
                   dockerignore: "vendor\n!*/keep", dir: "vendor", skip: false },
        SkipCase { what: "exception with a wildcard segment that does not fit: skip",
                   dockerignore: "vendor\n!src*/keep", dir: "vendor", skip: true },
        SkipCase { what: "`**` exception may match anywhere: walk",
                   dockerignore: "vendor\n!**/*.go", dir: "vendor", skip: false },
        SkipCase { what: "exception whose class can match `/`: walk",
                   dockerignore: "build\n!build[^x]keep", dir: "build", skip: false },
        SkipCase { what: "exception before the last matching exclusion: skip",
                   dockerignore: "!build/keep\nbuild", dir: "build", skip: true },
        SkipCase { what: "dir re-included by an exception: walk",
                   dockerignore: "*\n!src", dir: "src", skip: false },
        SkipCase { what: "root-level file exception does not reach into dirs: skip",
                   dockerignore: "*\n!README.md", dir: "docs", skip: true },
        SkipCase { what: "`dir/**` excludes the contents but not dir: walk",
                   dockerignore: "dir/**", dir: "dir", skip: false },
        SkipCase { what: "`dir/**` excludes subdirectories: skip",
                   dockerignore: "dir/**", dir: "dir/sub", skip: true },
    ];

    #[test]
    fn can_skip_dir_spec() {
        let mut failures = Vec::new();
        for case in SKIPPING {
            let ignore = DockerIgnore::parse(case.dockerignore)
                .unwrap_or_else(|err| panic!("{}: {err}", case.what));
            if ignore.can_skip_dir(case.dir) != case.skip {
                failures.push(format!(
                    "{}: can_skip_dir({:?}) should be {}",
                    case.what, case.dir, case.skip
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    /// Pruning must never hide a path that `is_excluded` would keep.
    #[test]
    fn skipped_dirs_contain_only_excluded_paths() {
        const TREE: &[&str] = &[
            "Dockerfile",
            ".dockerignore",
            "README.md",
            "src/main.rs",
            "src/keep/x.rs",
            "build/out.o",
            "build/keep.txt",
            "build/a/b/keep",
            "build/c/d.o",
            "vendor/a/x.go",
            "vendor/a/x.c",
            "vendor/keep",
            "dir/sub/file",
            "docs/keep/x.md",
        ];
        let files = MATCHING
            .iter()
            .map(|case| case.dockerignore)
            .chain(SKIPPING.iter().map(|case| case.dockerignore));
        for dockerignore in files {
            let ignore = DockerIgnore::parse(dockerignore).unwrap();
            for path in TREE {
                for (end, _) in path.match_indices('/') {
                    let dir = &path[..end];
                    if !ignore.can_skip_dir(dir) {
                        continue;
                    }
                    for inner in TREE.iter().filter(|p| p.starts_with(&format!("{dir}/"))) {
                        assert!(
                            ignore.is_excluded(inner),
                            "{dockerignore:?}: skipping {dir} would drop included {inner}"
                        );
                    }
                }
            }
        }
    }

    /// `keep()` calls on a parsed file and the outcome.
    struct KeepCase {
        what: &'static str,
        dockerignore: &'static str,
        keep: &'static [&'static str],
        appended: usize,
        excluded: &'static [&'static str],
        included: &'static [&'static str],
    }

    #[rustfmt::skip]
    const KEEPING: &[KeepCase] = &[
        KeepCase { what: "Dockerfile and .dockerignore excluded by `*` are kept",
                   dockerignore: "*", keep: &["Dockerfile", ".dockerignore"], appended: 2,
                   excluded: &["other"], included: &["Dockerfile", ".dockerignore"] },
        KeepCase { what: "files that are not excluded add no pattern",
                   dockerignore: "*.md", keep: &["Dockerfile", ".dockerignore"], appended: 0,
                   excluded: &["x.md"], included: &["Dockerfile", ".dockerignore"] },
        KeepCase { what: "an explicitly ignored Dockerfile is still kept",
                   dockerignore: "Dockerfile\n.dockerignore", keep: &["Dockerfile", ".dockerignore"],
                   appended: 2, excluded: &[], included: &["Dockerfile", ".dockerignore"] },
        KeepCase { what: "a Dockerfile in an excluded directory is kept, its siblings are not",
                   dockerignore: "docker", keep: &["docker/Dockerfile.prod"], appended: 1,
                   excluded: &["docker/other"], included: &["docker/Dockerfile.prod"] },
        KeepCase { what: "the kept path is cleaned like a pattern",
                   dockerignore: "Dockerfile", keep: &["./Dockerfile"], appended: 1,
                   excluded: &[], included: &["Dockerfile"] },
        KeepCase { what: "glob characters in the kept path are literal",
                   dockerignore: "*", keep: &["Dockerfile[1]"], appended: 1,
                   excluded: &["Dockerfile1"], included: &["Dockerfile[1]"] },
        KeepCase { what: "the empty matcher stays empty",
                   dockerignore: "", keep: &["Dockerfile", ".dockerignore"], appended: 0,
                   excluded: &[], included: &["Dockerfile"] },
    ];

    #[test]
    fn keep_spec() {
        let mut failures = Vec::new();
        for case in KEEPING {
            let mut ignore = DockerIgnore::parse(case.dockerignore)
                .unwrap_or_else(|err| panic!("{}: {err}", case.what));
            let before = ignore.patterns.len();
            for path in case.keep {
                ignore.keep(path);
            }
            if ignore.patterns.len() - before != case.appended {
                failures.push(format!(
                    "{}: appended {} patterns, expected {}",
                    case.what,
                    ignore.patterns.len() - before,
                    case.appended
                ));
            }
            for path in case.excluded {
                if !ignore.is_excluded(path) {
                    failures.push(format!("{}: `{path}` should be excluded", case.what));
                }
            }
            for path in case.included {
                if ignore.is_excluded(path) {
                    failures.push(format!("{}: `{path}` should be included", case.what));
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn kept_dockerfile_blocks_pruning_its_directory() {
        let mut ignore = DockerIgnore::parse("docker").unwrap();
        assert!(ignore.can_skip_dir("docker"));
        ignore.keep("docker/Dockerfile");
        assert!(!ignore.can_skip_dir("docker"));
    }

    /// An invalid file and the line the error must point at.
    struct ErrorCase {
        what: &'static str,
        dockerignore: &'static str,
        line: usize,
        pattern: &'static str,
    }

    #[rustfmt::skip]
    const ERRORS: &[ErrorCase] = &[
        ErrorCase { what: "unterminated character class",
                    dockerignore: "ok\n[abc", line: 2, pattern: "[abc" },
        ErrorCase { what: "empty character class",
                    dockerignore: "a[]", line: 1, pattern: "a[]" },
        ErrorCase { what: "range with no upper bound",
                    dockerignore: "[a-]", line: 1, pattern: "[a-]" },
        ErrorCase { what: "range out of order",
                    dockerignore: "[z-a]", line: 1, pattern: "[z-a]" },
        ErrorCase { what: "trailing backslash",
                    dockerignore: r"foo\", line: 1, pattern: r"foo\" },
        ErrorCase { what: "lone `!`",
                    dockerignore: "*\n!", line: 2, pattern: "!" },
        ErrorCase { what: "`!/` cleans to a lone `!`",
                    dockerignore: "!/", line: 1, pattern: "!/" },
        ErrorCase { what: "line numbers count comments and blank lines",
                    dockerignore: "# comment\n\nok\n  !x[  ", line: 4, pattern: "!x[" },
        ErrorCase { what: "invalid exception pattern",
                    dockerignore: "*\n![", line: 2, pattern: "![" },
    ];

    #[test]
    fn error_spec() {
        for case in ERRORS {
            match DockerIgnore::parse(case.dockerignore) {
                Ok(_) => panic!("{}: expected an error", case.what),
                Err(err) => {
                    assert_eq!(err.line(), case.line, "{}: line", case.what);
                    assert_eq!(err.pattern(), case.pattern, "{}: pattern", case.what);
                }
            }
        }
    }

    #[test]
    fn errors_name_line_and_pattern() {
        let err = DockerIgnore::parse("ok\n[abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            ".dockerignore line 2: invalid pattern `[abc`: unterminated character class `[`"
        );
        let err = DockerIgnore::parse("!").unwrap_err();
        assert_eq!(
            err,
            PatternError::EmptyException {
                line: 1,
                pattern: "!".into()
            }
        );
        let _: &dyn std::error::Error = &err;
    }

    #[test]
    fn emptiness() {
        assert!(DockerIgnore::empty().is_empty());
        assert!(DockerIgnore::default().is_empty());
        assert!(DockerIgnore::parse("# only comments\n\n   \n")
            .unwrap()
            .is_empty());
        assert!(!DockerIgnore::parse("target").unwrap().is_empty());
        assert!(!DockerIgnore::empty().is_excluded("anything"));
        assert!(!DockerIgnore::empty().can_skip_dir("anything"));
    }

    #[test]
    fn debug_shows_cleaned_patterns() {
        let ignore = DockerIgnore::parse("./target/\n! /src").unwrap();
        assert_eq!(
            format!("{ignore:?}"),
            "DockerIgnore { patterns: [target, !src] }"
        );
    }

    #[test]
    fn clean_path_matches_go() {
        #[rustfmt::skip]
        let cases = [
            ("", "."), (".", "."), ("a/", "a"), ("./a", "a"), ("a//b", "a/b"),
            ("a/./b", "a/b"), ("a/b/..", "a"), ("a/../..", ".."), ("../../a", "../../a"),
            ("/", "/"), ("/../a", "/a"), ("//a//", "/a"), ("!./a", "!./a"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "clean_path({input:?})");
        }
    }
}
