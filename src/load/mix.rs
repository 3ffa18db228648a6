//! The mix of `load`: which paths to request, in what proportions, and the weighted random choice
//! among them.

use std::fmt;

use rand::Rng;
use url::Url;

/// Weighted paths, as given to `--mix`: `/=70,/do_task?seconds=0.1=30`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    entries: Vec<MixEntry>,
    /// Running totals of the weights, for the choice by binary search.
    cumulative: Vec<u64>,
}

/// One path of the mix and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixEntry {
    /// Path and query, starting with `/`, appended to the target.
    pub path: String,
    /// Relative weight; 0 keeps the path in the mix without requesting it.
    pub weight: u32,
}

impl Mix {
    /// Parses comma-separated `PATH=WEIGHT` entries. Each entry is split at its *last* `=`, so
    /// `/do_task?seconds=0.1=20` is the path `/do_task?seconds=0.1` with weight 20.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (path, weight) = item.rsplit_once('=').ok_or_else(|| {
                format!("'{item}' is not PATH=WEIGHT; expected entries such as /=70,/do_task?seconds=0.1=30")
            })?;
            let path = path.trim();
            check_path(path)?;
            let weight = weight.trim().parse::<u32>().map_err(|_| {
                format!("the weight '{weight}' of '{path}' is not a weight: expected a whole number from 0, such as 20")
            })?;
            entries.push(MixEntry {
                path: path.to_string(),
                weight,
            });
        }
        if entries.is_empty() {
            return Err(
                "expected PATH=WEIGHT entries such as /=70,/do_task?seconds=0.1=30".to_string(),
            );
        }
        let cumulative: Vec<u64> = entries
            .iter()
            .scan(0u64, |total, entry| {
                *total += u64::from(entry.weight);
                Some(*total)
            })
            .collect();
        if cumulative.last() == Some(&0) {
            return Err("the weights add up to 0; give at least one path a weight above 0".into());
        }
        Ok(Self {
            entries,
            cumulative,
        })
    }

    /// The entries, in the order given.
    pub fn entries(&self) -> &[MixEntry] {
        &self.entries
    }

    /// The index of a randomly chosen entry, each with probability weight / total.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().expect("a parsed mix is not empty");
        let ticket = rng.random_range(0..total);
        // The first entry whose running total passes the ticket; a weight of 0 adds nothing to
        // the total, so its entry is never the first to pass.
        self.cumulative.partition_point(|&sum| sum <= ticket)
    }

    /// The full URL of each entry, in order: the path appended to the target's own path. The
    /// result never leaves the target's scheme, host and port.
    pub fn urls(&self, target: &Url) -> Result<Vec<Url>, String> {
        let base = target.as_str().trim_end_matches('/');
        self.entries
            .iter()
            .map(|entry| {
                let url = Url::parse(&format!("{base}{}", entry.path))
                    .map_err(|e| format!("'{}' does not make a URL: {e}", entry.path))?;
                if url.origin() != target.origin() {
                    return Err(format!(
                        "'{}' would leave {}; give a path on that server",
                        entry.path,
                        target.origin().ascii_serialization()
                    ));
                }
                Ok(url)
            })
            .collect()
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(f, "{comma}{}={}", entry.path, entry.weight)?;
        }
        Ok(())
    }
}

/// A path is appended to the target, so it must not name a host of its own: no absolute URLs,
/// no `//host` (a scheme-relative URL).
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "'{path}' is not a path: paths start with / and are appended to --target (absolute URLs are not allowed)"
        ));
    }
    if path.starts_with("//") || path.starts_with("/\\") {
        return Err(format!(
            "'{path}' could name another host: paths must not start with // (absolute URLs are not allowed)"
        ));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "'{path}' contains a space or a control character; write it percent-encoded, such as %20"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn paths(mix: &Mix) -> Vec<(&str, u32)> {
        mix.entries()
            .iter()
            .map(|e| (e.path.as_str(), e.weight))
            .collect()
    }

    #[test]
    fn entries_are_split_at_their_last_equals_sign() {
        let mix = Mix::parse("/=70,/do_task?seconds=0.1=20,/status/500=5, /random = 5").unwrap();

        assert_eq!(
            paths(&mix),
            vec![
                ("/", 70),
                ("/do_task?seconds=0.1", 20),
                ("/status/500", 5),
                ("/random", 5)
            ]
        );
        assert_eq!(
            mix.to_string(),
            "/=70,/do_task?seconds=0.1=20,/status/500=5,/random=5"
        );
    }

    #[test]
    fn weights_are_whole_numbers_with_a_positive_sum() {
        assert!(Mix::parse("/=x").unwrap_err().contains("'x'"));
        assert!(Mix::parse("/=-1").is_err());
        assert!(Mix::parse("/=1.5").is_err());
        assert!(Mix::parse("/").unwrap_err().contains("PATH=WEIGHT"));
        assert!(Mix::parse("/=0,/a=0").unwrap_err().contains("add up to 0"));
        assert!(Mix::parse("").is_err());
        assert!(Mix::parse("/=0,/a=1").is_ok());
    }

    #[test]
    fn absolute_urls_and_other_hosts_are_refused() {
        for bad in [
            "http://example.com/=1",
            "example.com/=1",
            "//example.com/=1",
            "/\\example.com=1",
            "=1",
            "/a b=1",
        ] {
            assert!(Mix::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(
            Mix::parse("http://example.com/=1")
                .unwrap_err()
                .contains("http://example.com/")
        );
    }

    #[test]
    fn paths_are_appended_to_the_target() {
        let mix = Mix::parse("/=1,/do_task?seconds=0.1=1,/status/500=1").unwrap();

        let root = mix.urls(&Url::parse("http://127.0.0.1:5000").unwrap());
        let prefixed = mix.urls(&Url::parse("https://example.com/app/").unwrap());

        let as_str = |urls: Vec<Url>| urls.iter().map(Url::to_string).collect::<Vec<_>>();
        assert_eq!(
            as_str(root.unwrap()),
            vec![
                "http://127.0.0.1:5000/",
                "http://127.0.0.1:5000/do_task?seconds=0.1",
                "http://127.0.0.1:5000/status/500"
            ]
        );
        assert_eq!(
            as_str(prefixed.unwrap()),
            vec![
                "https://example.com/app/",
                "https://example.com/app/do_task?seconds=0.1",
                "https://example.com/app/status/500"
            ]
        );
    }

    #[test]
    fn the_choice_follows_the_weights() {
        let mix = Mix::parse("/=70,/b=20,/never=0,/c=10").unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 4];

        for _ in 0..100_000 {
            counts[mix.pick(&mut rng)] += 1;
        }

        assert_eq!(counts[2], 0, "a weight of 0 is never picked");
        for (count, expected) in [
            (counts[0], 70_000),
            (counts[1], 20_000),
            (counts[3], 10_000),
        ] {
            assert!(
                count.abs_diff(expected) < 1_000,
                "{counts:?}: {count} is far from {expected}"
            );
        }
    }

    #[test]
    fn a_fixed_seed_gives_the_same_sequence() {
        let mix = Mix::parse("/=60,/do_task?seconds=0=20,/random=20").unwrap();
        let sequence = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..200).map(|_| mix.pick(&mut rng)).collect::<Vec<_>>()
        };

        assert_eq!(sequence(1), sequence(1));
        assert_ne!(sequence(1), sequence(2));
    }
}
