//! Durations as kube-proxy's flags and config file spell them (Go's
//! `time.Duration`: `30s`, `1m0s`, `500ms`, `1h30m`, `1.5s`, `0`), parsed
//! by jiff's "friendly" format, which reads Go's and refuses what does not
//! fit (overflow included) with an error rather than a panic.

use std::time::Duration;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // Go's one unit-less duration.
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|error| format!("invalid duration {text:?}: {error}"))?;
    Duration::try_from(signed).map_err(|_| format!("invalid duration {text:?}: negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_kube_proxy_flags_use() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999999999h").is_err());
        assert_eq!(parse_duration("1m0s"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("").is_err());
    }
}
