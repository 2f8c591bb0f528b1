//! `sutantra completions SHELL`: the shell completion script, generated from the clap
//! definition (`clap_complete`), so it always matches the commands of this binary.
//!
//! The Debian package ships the bash script from `firmware/debian/sutantra.bash-completion`,
//! which is checked in (a cross build cannot run the target binary to generate it) and kept
//! equal to the generated one by a unit test here (`UPDATE_GOLDEN=1` rewrites it).

use clap::CommandFactory;
use clap_complete::Shell;
use std::process::ExitCode;

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::Cli::command(), "sutantra", &mut out);
    out
}

/// Prints the script to stdout.
pub fn print(shell: Shell) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(&script(shell))
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sutantra: cannot write the completion script: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_knows_the_commands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(script(shell)).expect("UTF-8 script");
            for word in ["status", "console", "viewers", "completions"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn the_packaged_bash_completion_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("debian/sutantra.bash-completion");
        let generated = script(Shell::Bash);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &generated).expect("write the bash completion");
        }
        let packaged = std::fs::read(&path).unwrap_or_default();
        assert!(
            packaged == generated,
            "{} is out of date: run `UPDATE_GOLDEN=1 cargo test -p sutantra completions` and \
             commit it",
            path.display()
        );
    }
}
