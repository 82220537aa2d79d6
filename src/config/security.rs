//! Listener security settings with Kafka's names: `listener.security.protocol.map` (which
//! protocol each listener speaks) and the `ssl.*` settings, globally or for one listener as
//! `listener.name.<listener>.ssl.*` (the listener name in lower case, as Kafka writes it).

use std::collections::BTreeMap;

use super::{ConfigError, Source};

/// Kafka's security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// The `ssl.*` settings Fjord acts on (others of Kafka's are accepted and reported as
/// having no effect).
pub const TLS_SETTINGS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.endpoint.identification.algorithm",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
];

/// Whether `key` is a TLS or SASL setting Fjord acts on, global or for one listener
/// (`listener.name.<l>.<mechanism>.sasl.jaas.config` included).
pub fn is_security_setting(key: &str) -> bool {
    let key = without_mechanism(listener_setting(key).map_or(key, |(_, k)| k));
    TLS_SETTINGS.contains(&key)
        || matches!(
            key,
            "sasl.enabled.mechanisms"
                | "sasl.jaas.config"
                | "connections.max.reauth.ms"
                | "sasl.server.callback.handler.class"
                | "sasl.oauthbearer.jwks.endpoint.url"
                | "sasl.oauthbearer.expected.audience"
                | "sasl.oauthbearer.expected.issuer"
                | "sasl.oauthbearer.sub.claim.name"
                | "sasl.oauthbearer.scope.claim.name"
                | "sasl.oauthbearer.clock.skew.seconds"
                | "authorizer.class.name"
                | "super.users"
                | "allow.everyone.if.no.acl.found"
        )
}

/// Whether a broker setting holds a secret (Kafka's PASSWORD type, also scoped to a
/// listener, and every JAAS entry): DescribeConfigs shows it as sensitive, with no value.
pub fn is_sensitive(key: &str) -> bool {
    let inner = listener_setting(key).map_or(key, |(_, k)| k);
    inner.ends_with("sasl.jaas.config")
        || matches!(
            super::kafka_setting(inner),
            Some((super::kafka::KafkaType::Password, _))
        )
}

/// A listener's setting for one SASL mechanism (`oauthbearer.sasl.server.callback.handler.class`)
/// as the setting itself.
pub fn without_mechanism(key: &str) -> &str {
    ["plain.", "scram-sha-256.", "scram-sha-512.", "oauthbearer."]
        .iter()
        .find_map(|p| key.strip_prefix(p))
        .unwrap_or(key)
}

/// `listener.name.<l>.<setting>` split into the listener (lower case) and the setting.
pub fn listener_setting(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("listener.name.")?.split_once('.')
}

/// Every listener's protocol: `listener.security.protocol.map` when given, else Kafka's
/// default map (a listener named PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL speaks that
/// protocol). A listener with no protocol is an error, as in Kafka.
pub fn protocols(
    values: &BTreeMap<String, (String, Source)>,
    listeners: &[String],
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let mut map = BTreeMap::new();
    if let Some((m, _)) = values.get("listener.security.protocol.map") {
        for entry in m.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, proto) = entry.split_once(':').ok_or_else(|| {
                ConfigError(format!(
                    "setting `listener.security.protocol.map`: expected NAME:PROTOCOL, got {entry:?}"
                ))
            })?;
            let p = SecurityProtocol::parse(proto).ok_or_else(|| {
                ConfigError(format!(
                    "setting `listener.security.protocol.map`: unknown security protocol {proto:?} for {name}"
                ))
            })?;
            map.insert(name.trim().to_string(), p);
        }
    }
    let mut out = BTreeMap::new();
    for l in listeners {
        let p = map
            .get(l)
            .copied()
            .or_else(|| SecurityProtocol::parse(l))
            .ok_or_else(|| {
                ConfigError(format!(
                    "listener {l} has no security protocol: name it in `listener.security.protocol.map`"
                ))
            })?;
        out.insert(l.clone(), p);
    }
    Ok(out)
}

/// A TLS or SASL setting for `listener`: `listener.name.<listener>.<key>` first, then `<key>`.
pub fn listener_value(
    values: &BTreeMap<String, (String, Source)>,
    listener: &str,
    key: &str,
) -> Option<String> {
    let scoped = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
    values
        .get(&scoped)
        .or_else(|| values.get(key))
        .map(|(v, _)| v.clone())
        .filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_values as vals;

    #[test]
    fn protocols_follow_the_map_or_kafkas_default() {
        let v = vals(&[(
            "listener.security.protocol.map",
            "INTERNAL:SSL,EXT:PLAINTEXT",
        )]);
        let p = protocols(&v, &["INTERNAL".into(), "EXT".into()]).unwrap();
        assert_eq!(p["INTERNAL"], SecurityProtocol::Ssl);
        assert_eq!(p["EXT"], SecurityProtocol::Plaintext);
        let p = protocols(&vals(&[]), &["SSL".into(), "PLAINTEXT".into()]).unwrap();
        assert_eq!(p["SSL"], SecurityProtocol::Ssl);
        assert!(protocols(&vals(&[]), &["OTHER".into()]).is_err());
        assert_eq!(
            protocols(&vals(&[]), &["SASL_SSL".into()]).unwrap()["SASL_SSL"],
            SecurityProtocol::SaslSsl
        );
        let bad = vals(&[("listener.security.protocol.map", "A:TLS")]);
        assert!(protocols(&bad, &["A".into()]).is_err());
    }

    #[test]
    fn a_listener_setting_wins_over_the_global_one() {
        let v = vals(&[
            ("ssl.client.auth", "none"),
            ("listener.name.internal.ssl.client.auth", "required"),
        ]);
        assert_eq!(
            listener_value(&v, "INTERNAL", "ssl.client.auth").as_deref(),
            Some("required")
        );
        assert_eq!(
            listener_value(&v, "EXT", "ssl.client.auth").as_deref(),
            Some("none")
        );
        assert!(is_security_setting(
            "listener.name.internal.ssl.keystore.location"
        ));
        assert!(is_security_setting(
            "listener.name.sasl_ssl.plain.sasl.jaas.config"
        ));
        assert!(!is_security_setting("ssl.cipher.suites"));
        assert!(is_security_setting(
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class"
        ));
        assert!(is_security_setting("connections.max.reauth.ms"));
        for secret in [
            "ssl.keystore.password",
            "ssl.keystore.key",
            "sasl.jaas.config",
            "listener.name.sasl_ssl.plain.sasl.jaas.config",
            "listener.name.ssl.ssl.key.password",
        ] {
            assert!(is_sensitive(secret), "{secret}");
        }
        assert!(!is_sensitive("ssl.keystore.location"));
        assert!(!is_sensitive("log.retention.ms"));
    }
}
