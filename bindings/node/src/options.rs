//! The core's option table, exported to the TS layer (see [`vecdex::options`]): TS checks
//! option objects against it, so no option name, limit or default is written in TS.

use napi_derive::napi;

/// Every option set as JSON: `{ SetName: { includes: [...], options: { name: { kind, min, max,
/// choices, set, default | derived | off | required } } } }`.
#[napi]
pub fn option_tables_json() -> String {
    vecdex::options::tables_json()
}

/// The message for an option name `set` does not take: it names the closest valid one.
#[napi]
pub fn unknown_option_message(set: String, key: String) -> String {
    vecdex::options::unknown_option(&set, &key).to_string()
}

/// The candidate closest to `name` (a slip of a few letters), if any: for names that are not
/// options, such as CLI flags.
#[napi]
pub fn closest_name(name: String, candidates: Vec<String>) -> Option<String> {
    let list: Vec<&str> = candidates.iter().map(String::as_str).collect();
    vecdex::options::closest(&name, &list).map(str::to_string)
}
