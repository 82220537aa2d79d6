//! Who a TLS client is: the subject of its certificate as Java's RFC 2253 form (what Kafka's
//! `X500Principal.getName()` gives, most specific name first: `CN=alice,OU=eng,O=acme`),
//! mapped by `ssl.principal.mapping.rules` (Kafka's `RULE:pattern/replacement/[LU]` and
//! `DEFAULT`) to the name of a `User:` principal.

use regex::Regex;
use x509_parser::der_parser::asn1_rs::ToDer;

/// The principal of a client that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The RFC 2253 string of a DER certificate's subject.
pub fn subject_dn(cert_der: &[u8]) -> anyhow::Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| anyhow::anyhow!("unreadable certificate: {e}"))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    // As Java's X500Principal writes it: a value of a type it has a keyword
                    // for as escaped text, any other (or one that is not a string) as `#`
                    // and the hex of its whole DER encoding.
                    match (keyword(&oid), atv.as_str()) {
                        (Some(k), Ok(s)) => format!("{k}={}", escape(s)),
                        (k, _) => {
                            let der = atv.attr_value().to_der_vec().unwrap_or_default();
                            format!("{}=#{}", k.unwrap_or(&oid), hex(&der))
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    // The certificate lists the most general name first; RFC 2253 the most specific.
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// The keywords Java's RFC 2253 form uses; other attributes appear by OID.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 2253 escaping of an attribute value, with Java's set (`,=+<>#;"\` anywhere, spaces
/// at either end, control characters as `\xx`).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        if c.is_ascii_control() {
            out.push_str(&format!("\\{:02x}", c as u8));
            continue;
        }
        let special = matches!(c, ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\')
            || (c == ' ' && (i == 0 || i + 1 == n));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// Parsed `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct MappingRules(Vec<Rule>);

impl Default for MappingRules {
    fn default() -> Self {
        MappingRules(vec![Rule::Default])
    }
}

impl MappingRules {
    pub fn parse(s: &str) -> anyhow::Result<MappingRules> {
        let mut rules = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("RULE:") {
                let (pattern, r) = until_slash(r)
                    .ok_or_else(|| anyhow::anyhow!("RULE: without /replacement/ in {s:?}"))?;
                let (replacement, r) = until_slash(r)
                    .ok_or_else(|| anyhow::anyhow!("RULE: without a closing / in {s:?}"))?;
                let (case, r) = match r.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &r[1..]),
                    _ => (None, r),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| anyhow::anyhow!("bad pattern in {s:?}: {e}"))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = r;
            } else {
                anyhow::bail!("invalid rule at {rest:?}: expected DEFAULT or RULE:");
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None if rest.is_empty() => {}
                None => anyhow::bail!("invalid rule at {rest:?}: expected a comma"),
            }
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(MappingRules(rules))
    }

    /// The principal name for `dn`: the first rule that matches; none matching is an error,
    /// as in Kafka (the connection fails).
    pub fn apply(&self, dn: &str) -> anyhow::Result<String> {
        for r in &self.0 {
            match r {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let out = pattern.replace(dn, replacement.as_str()).into_owned();
                        return Ok(match case {
                            Some('L') => out.to_lowercase(),
                            Some('U') => out.to_uppercase(),
                            _ => out,
                        });
                    }
                }
            }
        }
        anyhow::bail!("no ssl.principal.mapping.rules rule applies to {dn:?}")
    }
}

/// Text up to the next unescaped `/`, with `\/` unescaped, and what follows it.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, n)) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` group references as the regex crate's `${1}`.
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push_str("${");
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                out.push(d);
                chars.next();
            }
            out.push('}');
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_mapping_rules() {
        let dn = "CN=kafka-client,OU=ServiceUsers,O=Acme,C=US";
        assert_eq!(MappingRules::default().apply(dn).unwrap(), dn);
        let r = MappingRules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, DEFAULT",
        )
        .unwrap();
        assert_eq!(r.apply(dn).unwrap(), "kafka-client");
        assert_eq!(
            r.apply("CN=Bob,OU=Eng,O=Acme,L=Paris,ST=IDF,C=FR").unwrap(),
            "bob@eng"
        );
        assert_eq!(r.apply("CN=other").unwrap(), "CN=other");
        let upper = MappingRules::parse("RULE:^CN=([^,]*).*$/$1/U").unwrap();
        assert_eq!(upper.apply(dn).unwrap(), "KAFKA-CLIENT");
        assert!(upper.apply("O=x").is_err(), "no rule applies");
        let slash = MappingRules::parse(r"RULE:^CN=(a\/b)$/x-$1/").unwrap();
        assert_eq!(slash.apply("CN=a/b").unwrap(), "x-a/b");
        assert!(MappingRules::parse("RULE:^CN=(.*)$").is_err());
        assert!(MappingRules::parse("NONSENSE").is_err());
    }

    #[test]
    fn a_certificates_subject_reads_as_java_writes_it() {
        // openssl req -subj "/C=US/O=Acme, Inc./OU=eng/CN=alice/emailAddress=a@b.c"
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let pem = include_bytes!("../../tests/fixtures/client-alice.pem");
        let cert = CertificateDer::from_pem_slice(pem).unwrap();
        // Most specific first; emailAddress has no keyword: its IA5String DER in hex.
        assert_eq!(
            subject_dn(cert.as_ref()).unwrap(),
            "1.2.840.113549.1.9.1=#16056140622e63,CN=alice,OU=eng,O=Acme\\, Inc.,C=US"
        );
        assert!(subject_dn(b"not a certificate").is_err());
    }

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape("a,b+c"), r"a\,b\+c");
        assert_eq!(escape(" lead"), r"\ lead");
        assert_eq!(escape("#x"), r"\#x");
        assert_eq!(escape("a=b#c"), r"a\=b\#c");
        assert_eq!(escape("end "), r"end\ ");
        assert_eq!(escape("nul\0"), r"nul\00");
        assert_eq!(escape("plain"), "plain");
    }
}
