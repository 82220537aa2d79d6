//! Who a client is and how its connection is protected: TLS listeners ([`tls`]) and the
//! principal a connection acts as ([`principal`]).

pub mod acl;
pub mod authenticate;
pub mod authz;
pub mod connector;
pub mod login;
pub mod oauthbearer;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod store;
pub mod tls;
