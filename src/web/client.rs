//! Who is on the other end: the client's address, for limits and checkout holds.
//!
//! The socket's peer is the client unless it is one of `CHOLANG_TRUSTED_PROXIES`; then the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy is (entries further
//! left were written by the client and prove nothing). IPv6 clients are keyed by their /64,
//! which one household or phone usually holds whole.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::AppError;
use crate::web::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The key limits count under: the address, or the /64 of an IPv6 address.
    pub fn key(&self) -> String {
        match self.0 {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = a.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

/// The client address given the socket peer, the trusted proxies and the forwarded header.
pub fn client_ip(peer: IpAddr, trusted: &[IpAddr], forwarded_for: Option<&str>) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(list) = forwarded_for else {
        return peer;
    };
    for entry in list.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            // Garbage where an address should be: trust nothing further left.
            Err(_) => return peer,
        }
    }
    peer
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no peer address")))?;
        let header = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let forwarded = (!header.is_empty()).then_some(header.as_str());
        Ok(ClientIp(client_ip(
            peer,
            &st.config.trusted_proxies,
            forwarded,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_header_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.2");
        let trusted = [proxy];
        // Not behind the proxy: the header is the client's own words.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &trusted, Some("1.2.3.4")),
            ip("203.0.113.9")
        );
        // Behind it: the right-most address the proxy saw.
        assert_eq!(
            client_ip(proxy, &trusted, Some("1.2.3.4, 198.51.100.7")),
            ip("198.51.100.7")
        );
        // Chained trusted proxies are skipped.
        assert_eq!(
            client_ip(proxy, &trusted, Some("198.51.100.7, 10.0.0.2")),
            ip("198.51.100.7")
        );
        // Garbage or no header: the proxy itself.
        assert_eq!(client_ip(proxy, &trusted, Some("evil")), proxy);
        assert_eq!(client_ip(proxy, &trusted, None), proxy);
    }

    proptest::proptest! {
        /// A forwarded header of any shape never panics and never names a trusted proxy.
        #[test]
        fn any_forwarded_header(h in "\\PC{0,120}") {
            let proxy = ip("10.0.0.2");
            let got = client_ip(proxy, &[proxy], Some(&h));
            proptest::prop_assert!(got == proxy || !h.is_empty());
            let _ = ClientIp(got).key();
        }
    }

    #[test]
    fn ipv6_keyed_by_its_64() {
        assert_eq!(
            ClientIp(ip("2001:db8:1:2:aaaa::1")).key(),
            ClientIp(ip("2001:db8:1:2:bbbb::9")).key()
        );
        assert_eq!(ClientIp(ip("::ffff:1.2.3.4")).key(), "1.2.3.4");
    }
}
