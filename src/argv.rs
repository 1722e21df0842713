//! A container's command as ECS takes it, in exec form (argv): parsed from a
//! line as a shell splits it, and written back for a line of output.

/// A command line as a shell splits it into words (no expansion): `'…'`
/// and `"…"` quote, `\` escapes. ECS takes the command in exec form; write
/// `sh -c '…'` for a shell. `Err` says what cannot be parsed.
pub fn parse(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote (') is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a double quote (\") is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote (\") is not closed".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err("the command ends with a lone backslash".into()),
            },
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(words)
}

/// A command for a line of output, quoted where a word needs it.
pub fn text(command: &[String]) -> String {
    command
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_into_words_as_a_shell_would() {
        let cases: &[(&str, &[&str])] = &[
            ("bin/rails db:migrate", &["bin/rails", "db:migrate"]),
            (
                "  sh -c 'echo a && exit 3'  ",
                &["sh", "-c", "echo a && exit 3"],
            ),
            (r#"echo "a \"b\" c" d\ e"#, &["echo", r#"a "b" c"#, "d e"]),
            ("echo ''", &["echo", ""]),
        ];
        for (text, words) in cases {
            let want: Vec<String> = words.iter().map(|s| s.to_string()).collect();
            assert_eq!(parse(text), Ok(want), "{text}");
        }
        assert!(parse("sh -c 'oops").unwrap_err().contains("single quote"));
        assert!(parse("echo \"oops").unwrap_err().contains("double quote"));
        assert!(parse("   ").unwrap_err().contains("empty"));
        assert_eq!(
            text(&["sh".into(), "-c".into(), "echo it's".into()]),
            r"sh -c 'echo it'\''s'"
        );
    }
}
