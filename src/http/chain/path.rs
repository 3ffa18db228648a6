//! The path of a chain: the ids of the instances a request has already passed through, carried
//! from caller to callee in [`PATH_HEADER`], and read back strictly.

use axum::http::HeaderValue;

/// The request header that carries the ids of the instances already on the path, comma-separated,
/// first caller first.
pub const PATH_HEADER: &str = "x-chain-path";

/// The most instances one chain may pass through; a longer path is answered as a loop.
pub const MAX_DEPTH: usize = 8;

/// The longest instance id accepted in [`PATH_HEADER`].
pub const MAX_ID_LENGTH: usize = 64;

/// Reads [`PATH_HEADER`]: ids of letters, digits, `-` and `_`, comma-separated. Reading stops
/// after [`MAX_DEPTH`] ids: a longer path is answered as a loop anyway.
pub fn parse_path(value: Option<&HeaderValue>) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let invalid = || {
        format!(
            "{PATH_HEADER} must list instance ids (letters, digits, - and _, at most {MAX_ID_LENGTH} each), comma-separated"
        )
    };
    let text = value.to_str().map_err(|_| invalid())?;
    let mut path = Vec::new();
    for id in text.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let valid = id.len() <= MAX_ID_LENGTH
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(invalid());
        }
        if path.len() == MAX_DEPTH {
            break;
        }
        path.push(id.to_string());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_header_is_read_strictly_and_bounded() {
        let read = |text: &str| parse_path(Some(&HeaderValue::from_str(text).unwrap()));

        assert_eq!(read(" a1, b-2 ,,c_3").unwrap(), ["a1", "b-2", "c_3"]);
        assert_eq!(parse_path(None).unwrap(), Vec::<String>::new());
        assert!(read("a b").unwrap_err().contains(PATH_HEADER));
        assert!(read("<script>").is_err());
        assert!(read(&"x".repeat(65)).is_err());
        let long: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(read(&long.join(",")).unwrap().len(), MAX_DEPTH);
    }
}
