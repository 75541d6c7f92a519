//! The Lua scripts (one file each in `lua/`, loaded once and run by EVALSHA, reloaded on
//! NOSCRIPT by `ScriptInvocation`) and the parsing of their replies.

use std::sync::LazyLock;

use redis::{Script, Value};

use crate::domain::holds::HoldCheck;
use crate::error::{Error, Result};

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(super) static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!(concat!("../../../lua/", $file))));
    };
}

/// A script that counts a request against a rate limit: `lua/gcra.lua` prepended.
macro_rules! counting_script {
    ($name:ident, $file:literal) => {
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../../../lua/gcra.lua"),
                include_str!(concat!("../../../lua/", $file))
            ))
        });
    };
}

/// A script that keeps the per-row availability of the seat layout and the channel parts of tier
/// units, and publishes its changes to the live map: `lua/rows.lua`, `lua/pools.lua` and
/// `lua/publish.lua` prepended (`rebuild.lua` publishes nothing; the library's two functions
/// cost it nothing unless called).
macro_rules! pool_keeping_script {
    ($name:ident, $file:literal) => {
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../../../lua/rows.lua"),
                include_str!("../../../lua/pools.lua"),
                include_str!("../../../lua/publish.lua"),
                include_str!(concat!("../../../lua/", $file))
            ))
        });
    };
}

/// A script that keeps the per-row availability of the seat layout and publishes its changes to
/// the live map: `lua/rows.lua` and `lua/publish.lua` prepended.
macro_rules! row_keeping_script {
    ($name:ident, $file:literal) => {
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../../../lua/rows.lua"),
                include_str!("../../../lua/publish.lua"),
                include_str!(concat!("../../../lua/", $file))
            ))
        });
    };
}

pub(super) static HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../../../lua/gcra.lua"),
        include_str!("../../../lua/rows.lua"),
        include_str!("../../../lua/caps.lua"),
        include_str!("../../../lua/policy.lua"),
        include_str!("../../../lua/pools.lua"),
        include_str!("../../../lua/pools_take.lua"),
        include_str!("../../../lua/publish.lua"),
        include_str!("../../../lua/hold.lua")
    ))
});
/// `hold.lua`'s path for plain events (see `hold_plain.rs`): `gcra.lua`, `caps.lua` and
/// `publish.lua` prepended.
pub(super) static HOLD_PLAIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../../../lua/gcra.lua"),
        include_str!("../../../lua/caps.lua"),
        include_str!("../../../lua/publish.lua"),
        include_str!("../../../lua/hold_plain.lua")
    ))
});
pub(super) static BEST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../../../lua/gcra.lua"),
        include_str!("../../../lua/rows.lua"),
        include_str!("../../../lua/caps.lua"),
        include_str!("../../../lua/policy.lua"),
        include_str!("../../../lua/publish.lua"),
        include_str!("../../../lua/best.lua")
    ))
});
script!(PIN, "pin.lua");
/// `extend.lua` publishes the new expiry to the live map: `lua/publish.lua` prepended.
pub(super) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../../../lua/publish.lua"),
        include_str!("../../../lua/extend.lua")
    ))
});
script!(UNPIN, "unpin.lua");
pool_keeping_script!(SETTLE, "settle.lua");
pool_keeping_script!(REBUILD, "rebuild.lua");
pool_keeping_script!(MARK_BOOKED, "mark_booked.lua");
row_keeping_script!(BLOCK, "block.lua");
pub(super) static HELD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../../../lua/pools.lua"),
        include_str!("../../../lua/held.lua")
    ))
});
script!(SET_POLICY, "set_policy.lua");
script!(HISTORY, "history.lua");
counting_script!(RATE_LIMIT, "rate_limit.lua");

/// An EVALSHA of `script` with `keys` keys, its keys and arguments to be added in order. Built
/// straight into one command buffer: a `ScriptInvocation` keeps every key and argument in a
/// buffer of its own and copies them all into a new command on each call.
pub(super) fn evalsha(script: &Script, keys: usize, args: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(3 + keys + args, 64 * (keys + args) + 48);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
    cmd
}

pub(super) fn unexpected(script: &str, what: &str) -> Error {
    Error::Internal(format!("unexpected reply from {script}.lua: {what}"))
}

pub(super) fn string(v: &Value) -> Result<String> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        other => Err(unexpected("script", &format!("{other:?}"))),
    }
}

/// Splits a `{TAG, ...}` reply into its tag and the rest.
pub(super) fn tagged(v: Value) -> Result<(String, Vec<Value>)> {
    match v {
        Value::Array(mut items) if !items.is_empty() => {
            // The rest stays in the reply's vector (no second one).
            let tag = string(&items.remove(0))?;
            Ok((tag, items))
        }
        other => Err(unexpected("script", &format!("{other:?}"))),
    }
}

pub(super) fn int_at(items: &[Value], i: usize) -> Result<i64> {
    match items.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        other => Err(unexpected("script", &format!("{other:?}"))),
    }
}

pub(super) fn strings_at(items: &[Value], i: usize) -> Result<Vec<String>> {
    match items.get(i) {
        Some(Value::Array(list)) => list.iter().map(string).collect(),
        other => Err(unexpected("script", &format!("{other:?}"))),
    }
}

/// `{"OK"} | {"GONE"} | {"NOT_OWNER"} | {"PINNED"}`, of `pin.lua` and `settle.lua`.
pub(super) fn hold_check(script: &str, v: Value) -> Result<HoldCheck> {
    let (tag, _) = tagged(v)?;
    match tag.as_str() {
        "OK" => Ok(HoldCheck::Ok),
        "GONE" => Ok(HoldCheck::Gone),
        "NOT_OWNER" => Ok(HoldCheck::NotOwner),
        "PINNED" => Ok(HoldCheck::Pinned),
        other => Err(unexpected(script, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn tagged_replies_are_parsed() {
        let reply = Value::Array(vec![
            bulk("UNAVAILABLE"),
            Value::Array(vec![bulk("S1")]),
            Value::Array(vec![]),
        ]);
        let (tag, rest) = tagged(reply).expect("tagged");
        assert_eq!(tag, "UNAVAILABLE");
        assert_eq!(strings_at(&rest, 0).expect("booked"), ["S1"]);
        assert!(strings_at(&rest, 1).expect("held").is_empty());
        assert!(int_at(&rest, 2).is_err());
        assert!(tagged(Value::Int(1)).is_err());
    }

    #[test]
    fn hold_checks_are_parsed() {
        let check = |tag| hold_check("pin", Value::Array(vec![bulk(tag)]));
        assert_eq!(check("OK").ok(), Some(HoldCheck::Ok));
        assert_eq!(check("GONE").ok(), Some(HoldCheck::Gone));
        assert_eq!(check("NOT_OWNER").ok(), Some(HoldCheck::NotOwner));
        assert_eq!(check("PINNED").ok(), Some(HoldCheck::Pinned));
        assert!(check("WHAT").is_err());
    }
}
