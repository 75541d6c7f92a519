//! The command line of the one binary: `seatlock` (or `seatlock serve`) runs the service;
//! `seatlock keys create --name NAME --role service|admin [--channel CODE]... [--no-admission]`,
//! `seatlock keys list` and `seatlock keys revoke NAME` manage API keys in the database of
//! `DATABASE_URL`. A created key
//! is printed once, alone on stdout (so `KEY=$(seatlock keys create ...)` works); everything
//! else a command says goes to stderr. `seatlock webhooks create|list|delete` manage webhook
//! endpoints the same way (a created endpoint is printed once, with its secret, as JSON).

use crate::config::Settings;
use crate::domain::access::{KeyRole, NewApiKey, check_channels};
use crate::domain::webhooks::{
    NewEndpoint, check_description, check_event_ids, check_types, check_url, rfc3339,
};
use crate::service::{KeyCreated, Seatlock};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve,
    CreateKey(NewApiKey),
    ListKeys,
    RevokeKey { name: String },
    CreateWebhook(NewEndpoint),
    ListWebhooks,
    DeleteWebhook { id: uuid::Uuid },
    Help,
}

pub const USAGE: &str = "usage:
  seatlock [serve]                                   run the service
  seatlock keys create --name NAME --role service|admin [--channel CODE]... [--no-admission]
                                                     create an API key; prints it once. Its
                                                     holds may take seats of each channel
                                                     named; --no-admission: they need no
                                                     waiting-room token (admin keys never do)
  seatlock keys list                                 list keys (names, roles, channels,
                                                     admission, times)
  seatlock keys revoke NAME                          revoke the live key of NAME
  seatlock webhooks create --url URL [--type TYPE]... [--event ID]... [--description TEXT]
                                                     create a webhook endpoint; prints it
                                                     once, with its secret, as JSON
  seatlock webhooks list                             list endpoints
  seatlock webhooks delete ID                        delete an endpoint
Settings come from config/default.toml, config/$APP_ENV.toml, APP__* and DATABASE_URL.";

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // `--help` anywhere (`seatlock keys create --help`) asks for the usage.
    if args.iter().any(|a| matches!(*a, "--help" | "-h")) {
        return Ok(Command::Help);
    }
    match args.as_slice() {
        [] | ["serve"] => Ok(Command::Serve),
        ["help" | "--help" | "-h"] => Ok(Command::Help),
        ["keys", "list"] => Ok(Command::ListKeys),
        ["keys", "revoke", name] => Ok(Command::RevokeKey {
            name: name.to_string(),
        }),
        ["keys", "create", rest @ ..] => parse_key(rest),
        ["webhooks", "list"] => Ok(Command::ListWebhooks),
        ["webhooks", "delete", id] => Ok(Command::DeleteWebhook {
            id: uuid::Uuid::parse_str(id).map_err(|_| format!("{id:?} is not an endpoint id"))?,
        }),
        ["webhooks", "create", rest @ ..] => parse_webhook(rest),
        _ => Err(format!("unknown command: {}", args.join(" "))),
    }
}

/// `keys create` options; channel codes are checked here, so a bad one is a usage error.
fn parse_key(rest: &[&str]) -> Result<Command, String> {
    let (mut name, mut role, mut channels, mut no_admission) = (None, None, Vec::new(), false);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        if *flag == "--no-admission" {
            no_admission = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match *flag {
            "--name" => name = Some(value.to_string()),
            "--role" => {
                role = Some(
                    KeyRole::parse(value)
                        .ok_or_else(|| format!("--role must be service or admin, not {value:?}"))?,
                )
            }
            "--channel" => channels.push(value.to_string()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let role = role.ok_or("--role is required")?;
    Ok(Command::CreateKey(NewApiKey {
        name: name.ok_or("--name is required")?,
        channels: check_channels(channels).map_err(|e| format!("--channel: {e}"))?,
        skips_admission: no_admission || role == KeyRole::Admin,
        role,
    }))
}

/// `webhooks create` options, checked as the API checks them.
fn parse_webhook(rest: &[&str]) -> Result<Command, String> {
    let (mut url, mut types, mut events, mut description) = (None, Vec::new(), Vec::new(), None);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match *flag {
            "--url" => url = Some(value.to_string()),
            "--type" => types.push(value.to_string()),
            "--event" => events.push(
                value
                    .parse::<i64>()
                    .map_err(|_| format!("--event must be an event id, not {value:?}"))?,
            ),
            "--description" => description = Some(value.to_string()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    Ok(Command::CreateWebhook(NewEndpoint {
        url: check_url(&url)?.to_string(),
        types: check_types((!types.is_empty()).then_some(types))?,
        event_ids: check_event_ids((!events.is_empty()).then_some(events))?,
        description: check_description(description)?,
    }))
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
        Command::CreateKey(new) => match seatlock.create_api_key(&new).await {
            Ok(KeyCreated::Created(key)) => {
                println!("{key}");
                eprintln!(
                    "created {} key {:?}; it is shown only now, keep it secret",
                    new.role.as_str(),
                    new.name
                );
                0
            }
            Ok(KeyCreated::NameTaken) => {
                let name = &new.name;
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
                println!("NAME\tROLE\tCHANNELS\tSKIPS ADMISSION\tCREATED\tLAST USED\tREVOKED");
                let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or_else(|| "-".to_string(), |t| t.to_rfc3339())
                };
                for k in keys {
                    let channels = if k.channels.is_empty() {
                        "-".to_string()
                    } else {
                        k.channels.join(",")
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        k.name,
                        k.role.as_str(),
                        channels,
                        if k.skips_admission { "yes" } else { "no" },
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
        Command::CreateWebhook(new) => match seatlock.create_webhook(new).await {
            Ok((e, secret)) => {
                let created = serde_json::json!({
                    "id": e.id, "url": e.url, "types": e.types, "eventIds": e.event_ids,
                    "description": e.description, "enabled": e.enabled,
                    "createdAt": rfc3339(e.created_at_ms), "secret": secret,
                });
                println!("{created}");
                eprintln!(
                    "created webhook endpoint {}; its secret is shown only now",
                    e.id
                );
                0
            }
            Err(e) => {
                eprintln!("seatlock: {e}");
                1
            }
        },
        Command::ListWebhooks => match seatlock.list_webhooks().await {
            Ok(list) => {
                println!("ID\tURL\tTYPES\tEVENTS\tENABLED");
                let all = |v: Option<String>| v.unwrap_or_else(|| "all".into());
                for e in list {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        e.id,
                        e.url,
                        all(e.types.map(|t| t.join(","))),
                        all(e.event_ids.map(|ids| {
                            ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
                        })),
                        if e.enabled { "yes" } else { "no" }
                    );
                }
                0
            }
            Err(e) => {
                eprintln!("seatlock: {e}");
                1
            }
        },
        Command::DeleteWebhook { id } => match seatlock.delete_webhook(id).await {
            Ok(()) => {
                eprintln!("deleted webhook endpoint {id}");
                0
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
            Ok(Command::CreateKey(NewApiKey::new("ops", KeyRole::Admin)))
        );
        assert!(parse(&args("keys create --name ops")).is_err());
        assert!(parse(&args("keys create --name ops --role root")).is_err());
        assert!(parse(&args("keys create --name")).is_err());
        assert!(parse(&args("launch")).is_err());
        for asked in [
            "--help",
            "-h",
            "help",
            "keys --help",
            "keys create --help",
            "webhooks -h",
        ] {
            assert_eq!(parse(&args(asked)), Ok(Command::Help), "{asked}");
        }
    }

    #[test]
    fn key_channels_and_admission_are_parsed_and_checked() {
        assert_eq!(
            parse(&args(
                "keys create --name partner --channel presale --role service --no-admission \
                 --channel vip.1 --channel presale"
            )),
            Ok(Command::CreateKey(NewApiKey {
                name: "partner".into(),
                role: KeyRole::Service,
                channels: vec!["presale".into(), "vip.1".into()],
                skips_admission: true,
            }))
        );
        assert_eq!(
            parse(&args(
                "keys create --name shop --role service --channel presale"
            )),
            Ok(Command::CreateKey(NewApiKey {
                name: "shop".into(),
                role: KeyRole::Service,
                channels: vec!["presale".into()],
                skips_admission: false,
            }))
        );
        // An admin key skips admission with or without the flag.
        assert!(matches!(
            parse(&args("keys create --name ops --role admin")),
            Ok(Command::CreateKey(NewApiKey {
                skips_admission: true,
                ..
            }))
        ));
        assert!(parse(&args("keys create --name p --role service --channel")).is_err());
        assert!(parse(&args("keys create --name p --role service --channel a,b")).is_err());
        let long = "x".repeat(65);
        assert!(
            parse(&args(&format!(
                "keys create --name p --role service --channel {long}"
            )))
            .is_err()
        );
        let many: String = (0..21).map(|i| format!(" --channel c{i}")).collect();
        assert!(parse(&args(&format!("keys create --name p --role service{many}"))).is_err());
        let twenty: String = (0..20).map(|i| format!(" --channel c{i}")).collect();
        assert!(
            parse(&args(&format!(
                "keys create --name p --role service{twenty}"
            )))
            .is_ok()
        );
        assert!(
            parse(&args(
                "keys create --name p --role service --no-admission yes"
            ))
            .is_err()
        );
    }

    #[test]
    fn webhook_commands_are_parsed_and_checked_like_the_api() {
        assert_eq!(parse(&args("webhooks list")), Ok(Command::ListWebhooks));
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            parse(&args(&format!("webhooks delete {id}"))),
            Ok(Command::DeleteWebhook { id })
        );
        assert!(parse(&args("webhooks delete nope")).is_err());
        assert_eq!(
            parse(&args(
                "webhooks create --url https://example.com/h --type booking.confirmed --event 7"
            )),
            Ok(Command::CreateWebhook(NewEndpoint {
                url: "https://example.com/h".into(),
                types: Some(vec!["booking.confirmed".into()]),
                event_ids: Some(vec![7]),
                description: String::new(),
            }))
        );
        assert!(parse(&args("webhooks create --url ftp://example.com/")).is_err());
        assert!(
            parse(&args(
                "webhooks create --url https://e.com/ --type hold.nope"
            ))
            .is_err()
        );
        assert!(parse(&args("webhooks create --type hold.created")).is_err());
    }
}
