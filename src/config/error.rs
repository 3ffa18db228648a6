//! Configuration errors as one line each, naming the variable, the flag, the value and what is
//! valid; and the exit code they end the start with.

use clap::{
    Command,
    error::{ContextKind, ContextValue, ErrorKind},
};

/// Exit code for invalid configuration, as for any usage error.
pub const EXIT_CONFIG: i32 = 2;

/// Renders an invalid-value error of `command` (or one of its subcommands) as one line. Other
/// clap errors (help, version, unknown flags) keep clap's own output: `None`.
pub fn one_line(err: &clap::Error, command: &Command) -> Option<String> {
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let arg = err.get(ContextKind::InvalidArg)?.to_string();
    let value = err
        .get(ContextKind::InvalidValue)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let flag = arg.split_whitespace().next().unwrap_or(&arg).to_string();
    let found = arg_of(command, &flag);
    let variable = found
        .and_then(|a| a.get_env())
        .map_or_else(|| flag.clone(), |env| env.to_string_lossy().into_owned());
    // A secret's value is never printed, only whether it was empty.
    let value = match found.is_some_and(clap::Arg::is_hide_env_values_set) {
        true if !value.is_empty() => "***".to_string(),
        _ => value,
    };
    let reason = match err.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) => format!("valid values are {}", valid.join(", ")),
        _ => std::error::Error::source(err)
            .map(|source| source.to_string())
            .unwrap_or_else(|| "see --help".to_string()),
    };
    let setting = if variable == flag {
        flag
    } else {
        format!("{variable} ({flag})")
    };
    Some(format!(
        "error: invalid value '{value}' for {setting}: {reason}"
    ))
}

/// The argument whose flag is `flag`, in `command` or its subcommands.
fn arg_of<'a>(command: &'a Command, flag: &str) -> Option<&'a clap::Arg> {
    command
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|long| flag == format!("--{long}")))
        .or_else(|| command.get_subcommands().find_map(|sub| arg_of(sub, flag)))
}
