//! Listener settings: `NAME://host:port` entries of `listeners` and `advertised.listeners`.

use std::fmt;
use std::net::SocketAddr;

use super::ConfigError;

/// One `NAME://host:port` entry of `listeners` / `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// Socket addresses this listener binds. `localhost` binds both loopback families because
    /// librdkafka tries `::1` first and Java tries `127.0.0.1` first; an empty host or
    /// `0.0.0.0` binds every IPv4 interface as Kafka does.
    pub fn bind_addrs(&self) -> Vec<SocketAddr> {
        let host = self.host.as_str();
        match host {
            "" | "0.0.0.0" => vec![SocketAddr::from(([0, 0, 0, 0], self.port))],
            "localhost" => vec![
                SocketAddr::from(([127, 0, 0, 1], self.port)),
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.port)),
            ],
            _ => {
                let h = host.trim_start_matches('[').trim_end_matches(']');
                match h.parse::<std::net::IpAddr>() {
                    Ok(ip) => vec![SocketAddr::new(ip, self.port)],
                    Err(_) => {
                        use std::net::ToSocketAddrs;
                        (h, self.port)
                            .to_socket_addrs()
                            .map(|a| a.collect())
                            .unwrap_or_default()
                    }
                }
            }
        }
    }

    /// The host as clients should see it in Metadata: brackets stripped, wildcard replaced.
    pub fn advertised_host(&self) -> String {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        if h.is_empty() || h == "0.0.0.0" || h == "::" {
            "127.0.0.1".to_string()
        } else {
            h.to_string()
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.name, self.host, self.port)
    }
}

pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let bad = |why: &str| {
        ConfigError(format!(
            "invalid value {value:?} for setting `{key}`: {why}"
        ))
    };
    let mut out: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let port: u16 = port.parse().map_err(|_| bad("port is not a number"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("listener name must be letters, digits or '_'"));
        }
        if out.iter().any(|l| l.name == name) {
            return Err(bad("listener names must be unique"));
        }
        out.push(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        });
    }
    if out.is_empty() {
        return Err(bad("at least one listener is required"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_parse() {
        let l =
            parse_listeners("listeners", "PLAINTEXT://[::1]:9092,OTHER://127.0.0.1:9093").unwrap();
        assert_eq!(l[0].bind_addrs()[0].to_string(), "[::1]:9092");
        assert_eq!(l[0].advertised_host(), "::1");
        assert_eq!(l[1].port, 9093);
        assert!(parse_listeners("listeners", "nonsense").is_err());
        let local = parse_listeners("listeners", "PLAINTEXT://localhost:9092").unwrap();
        assert_eq!(local[0].bind_addrs().len(), 2);
    }
}
