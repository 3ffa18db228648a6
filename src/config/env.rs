//! The process environment, read once at start by clap and nobody else.
//!
//! A variable set to an empty value counts as unset, as the OpenTelemetry specification requires
//! (and as templated manifests often produce), except for secrets ([`super::auth::SECRET_VARIABLES`]),
//! whose empty value is an error. Once read, every `OTEL_*` variable is removed, so that the
//! OpenTelemetry SDK cannot apply a second, different reading of them.

use clap::Command;

/// `command` and its subcommands, with the variables that are set to an empty value unbound from
/// their arguments (so they count as unset), secrets excepted.
pub fn without_empty_variables(mut command: Command) -> Command {
    let empty: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| {
            arg.get_env().is_some_and(|env| {
                let name = env.to_string_lossy();
                !super::auth::SECRET_VARIABLES.contains(&name.as_ref())
                    && std::env::var_os(env).is_some_and(|v| v.is_empty())
            })
        })
        .map(|arg| arg.get_id().clone())
        .collect();
    for id in empty {
        command = command.mut_arg(id, |arg| arg.env(None));
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, without_empty_variables);
    }
    command
}

/// `command` with no argument bound to any variable: the defaults alone.
pub fn without_variables(mut command: Command) -> Command {
    let ids: Vec<clap::Id> = command
        .get_arguments()
        .map(|arg| arg.get_id().clone())
        .collect();
    for id in ids {
        command = command.mut_arg(id, |arg| arg.env(None));
    }
    command
}

/// The names of the variables that `command` (and its subcommands) documents.
pub fn documented(command: &Command) -> Vec<String> {
    let mut names: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    for sub in command.get_subcommands() {
        names.extend(documented(sub));
    }
    names
}

/// Removes every `OTEL_*` variable from the process environment once the configuration has read
/// the ones it documents, so that nothing else reads them: the OpenTelemetry SDK would otherwise
/// apply `OTEL_EXPORTER_OTLP_HEADERS` over the flag's headers, and honour variables the app does
/// not document (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_BSP_MAX_CONCURRENT_EXPORTS`, ...).
/// Returns the names of those undocumented ones that were set, sorted, to warn about.
///
/// # Safety
///
/// Must be called while no other thread exists: changing the environment races with any read of
/// it from another thread.
pub unsafe fn remove_otel_variables(documented: &[String]) -> Vec<String> {
    let mut ignored = Vec::new();
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with("OTEL_") {
            // SAFETY: the caller guarantees that no other thread exists.
            unsafe { std::env::remove_var(&name) };
            if !documented.contains(&name) {
                ignored.push(name);
            }
        }
    }
    ignored.sort();
    ignored
}
