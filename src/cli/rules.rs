//! `btcbot rules check|test`: exactly the reload path the running bot uses.

use crate::rules::RuleSet;
use crate::rules::ruletests::run_all;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load, validate and compile a config directory and run its rule tests (the reload path).
    /// Prints every error; exits 1 when anything is wrong.
    Check {
        #[arg(long, default_value_os_t = super::default_config_dir())]
        config: PathBuf,
    },
    /// Run the rule tests (rules/tests/*.yaml), printing pass/fail per case.
    Test {
        #[arg(long, default_value_os_t = super::default_config_dir())]
        config: PathBuf,
    },
}

pub fn run(cmd: RulesCommand) -> Result<ExitCode, String> {
    match cmd {
        RulesCommand::Check { config } => match RuleSet::build(&config) {
            Ok(set) => {
                println!("ok: rules {} from {}", set.hash, config.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                for line in e.to_string().lines() {
                    eprintln!("error: {line}");
                }
                Ok(ExitCode::from(1))
            }
        },
        RulesCommand::Test { config } => {
            let set = match RuleSet::compile(&config) {
                Ok(s) => s,
                Err(e) => {
                    for line in e.to_string().lines() {
                        eprintln!("error: {line}");
                    }
                    return Ok(ExitCode::from(1));
                }
            };
            let results = run_all(&set)?;
            let mut failed = 0;
            for r in &results {
                match &r.failure {
                    None => println!("pass  {} [{}]", r.file, r.name),
                    Some(diff) => {
                        failed += 1;
                        println!("FAIL  {} [{}]\n      {diff}", r.file, r.name);
                    }
                }
            }
            println!("{} passed, {} failed", results.len() - failed, failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
