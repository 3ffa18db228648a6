//! Error chains as people read them.

/// The innermost cause, such as "Connection refused (os error 111)": a client library's own
/// message ("error sending request for url ...") does not say what went wrong.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
