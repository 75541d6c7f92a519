//! The command line of the one binary: `seatlock` (or `seatlock serve`) runs the service;
//! `seatlock keys create --name NAME --role service|admin`, `seatlock keys list` and
//! `seatlock keys revoke NAME` manage API keys in the database of `DATABASE_URL`. A created key
//! is printed once, alone on stdout (so `KEY=$(seatlock keys create ...)` works); everything
//! else a command says goes to stderr.

use crate::config::Settings;
use crate::domain::access::KeyRole;
use crate::service::{KeyCreated, Seatlock};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve,
    CreateKey { name: String, role: KeyRole },
    ListKeys,
    RevokeKey { name: String },
    Help,
}

pub const USAGE: &str = "usage:
  seatlock [serve]                                   run the service
  seatlock keys create --name NAME --role service|admin
                                                     create an API key; prints it once
  seatlock keys list                                 list keys (names, roles, times)
  seatlock keys revoke NAME                          revoke the live key of NAME
Settings come from config/default.toml, config/$APP_ENV.toml, APP__* and DATABASE_URL.";

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["serve"] => Ok(Command::Serve),
        ["help" | "--help" | "-h"] => Ok(Command::Help),
        ["keys", "list"] => Ok(Command::ListKeys),
        ["keys", "revoke", name] => Ok(Command::RevokeKey {
            name: name.to_string(),
        }),
        ["keys", "create", rest @ ..] => {
            let (mut name, mut role) = (None, None);
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match *flag {
                    "--name" => name = Some(value.to_string()),
                    "--role" => {
                        role = Some(KeyRole::parse(value).ok_or_else(|| {
                            format!("--role must be service or admin, not {value:?}")
                        })?)
                    }
                    other => return Err(format!("unknown option {other:?}")),
                }
            }
            Ok(Command::CreateKey {
                name: name.ok_or("--name is required")?,
                role: role.ok_or("--role is required")?,
            })
        }
        _ => Err(format!("unknown command: {}", args.join(" "))),
    }
}

/// Runs a key command; returns the process exit code.
pub async fn run_keys(command: Command, settings: Settings) -> i32 {
    let seatlock = match Seatlock::connect(settings).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("seatlock: {e:#}");
            return 1;
        }
    };
    let code = match command {
        Command::CreateKey { name, role } => match seatlock.create_api_key(&name, role).await {
            Ok(KeyCreated::Created(key)) => {
                println!("{key}");
                eprintln!(
                    "created {} key {name:?}; it is shown only now, keep it secret",
                    role.as_str()
                );
                0
            }
            Ok(KeyCreated::NameTaken) => {
                eprintln!("seatlock: a live key is already named {name:?} (revoke it first)");
                1
            }
            Err(e) => {
                eprintln!("seatlock: {e}");
                1
            }
        },
        Command::ListKeys => match seatlock.list_api_keys().await {
            Ok(keys) => {
                println!("NAME\tROLE\tCREATED\tLAST USED\tREVOKED");
                let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or_else(|| "-".to_string(), |t| t.to_rfc3339())
                };
                for k in keys {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        k.name,
                        k.role.as_str(),
                        k.created_at.to_rfc3339(),
                        time(k.last_used_at),
                        time(k.revoked_at)
                    );
                }
                0
            }
            Err(e) => {
                eprintln!("seatlock: {e}");
                1
            }
        },
        Command::RevokeKey { name } => match seatlock.revoke_api_key(&name).await {
            Ok(true) => {
                let cache = seatlock.settings().auth.key_cache_seconds;
                eprintln!("revoked {name:?}; every instance refuses it within {cache} s");
                0
            }
            Ok(false) => {
                eprintln!("seatlock: no live key is named {name:?}");
                1
            }
            Err(e) => {
                eprintln!("seatlock: {e}");
                1
            }
        },
        Command::Serve | Command::Help => 2,
    };
    seatlock.close().await;
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn commands_are_parsed() {
        assert_eq!(parse(&args("")), Ok(Command::Serve));
        assert_eq!(parse(&args("serve")), Ok(Command::Serve));
        assert_eq!(parse(&args("keys list")), Ok(Command::ListKeys));
        assert_eq!(
            parse(&args("keys revoke checkout")),
            Ok(Command::RevokeKey {
                name: "checkout".into()
            })
        );
        assert_eq!(
            parse(&args("keys create --role admin --name ops")),
            Ok(Command::CreateKey {
                name: "ops".into(),
                role: KeyRole::Admin
            })
        );
        assert!(parse(&args("keys create --name ops")).is_err());
        assert!(parse(&args("keys create --name ops --role root")).is_err());
        assert!(parse(&args("keys create --name")).is_err());
        assert!(parse(&args("launch")).is_err());
    }
}
