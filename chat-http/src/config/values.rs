//! The values of flags that take a unit or `off`: rates (`30/10s`), timeouts (`10s`),
//! counts and the connection cap (`auto`). Each parses and prints the form `--help`
//! documents; none holds a default or a rule.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chatcore::Rate;

/// A `--limit-*` value: a rate (`COUNT/PERIOD`, see [`Rate`]) or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSetting(pub Option<Rate>);

impl FromStr for RateSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" => Ok(RateSetting(None)),
            rate => rate
                .parse::<Rate>()
                .map(|r| RateSetting(Some(r)))
                .map_err(|e| format!("{e}, or off")),
        }
    }
}

impl fmt::Display for RateSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(rate) => rate.fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// A timeout flag: a duration (`10s`, `500ms`, `1m`, `1h`) or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutSetting(pub Option<Duration>);

impl FromStr for TimeoutSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "off" {
            return Ok(TimeoutSetting(None));
        }
        let bad = || format!("{s:?} is not a duration like 10s, 500ms, 1m or 1h, or off");
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = s.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        let duration = Duration::from_millis(number.saturating_mul(unit_ms));
        if duration.is_zero() || duration > MAX_TIMEOUT {
            return Err(format!("{s:?}: a timeout must be 1ms to 1 day, or off"));
        }
        Ok(TimeoutSetting(Some(duration)))
    }
}

impl fmt::Display for TimeoutSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(d) = self.0 else {
            return f.write_str("off");
        };
        let ms = d.as_millis();
        let (n, unit) = [(3_600_000, "h"), (60_000, "m"), (1_000, "s")]
            .into_iter()
            .find(|(size, _)| ms % size == 0)
            .map(|(size, unit)| (ms / size, unit))
            .unwrap_or((ms, "ms"));
        write!(f, "{n}{unit}")
    }
}

/// Longest timeout a flag takes.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A count flag: a number from 1, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountSetting(pub Option<u32>);

impl FromStr for CountSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" => Ok(CountSetting(None)),
            n => match n.parse::<u32>() {
                Ok(n) if n > 0 => Ok(CountSetting(Some(n))),
                _ => Err(format!("{s:?} is not a number from 1, or off")),
            },
        }
    }
}

impl fmt::Display for CountSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => n.fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// `--max-connections`: `auto` (from the open-file limit), a number from 1, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxConnectionsSetting {
    /// Derived from the open-file limit ([`ConnSettings::max_connections_for`]).
    Auto,
    /// This many.
    At(u32),
    /// No cap.
    Off,
}

impl FromStr for MaxConnectionsSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            other => match other.parse::<CountSetting>() {
                Ok(CountSetting(Some(n))) => Ok(Self::At(n)),
                Ok(CountSetting(None)) => Ok(Self::Off),
                Err(_) => Err(format!("{s:?} is not a number from 1, auto or off")),
            },
        }
    }
}

impl fmt::Display for MaxConnectionsSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::At(n) => n.fmt(f),
            Self::Off => f.write_str("off"),
        }
    }
}
