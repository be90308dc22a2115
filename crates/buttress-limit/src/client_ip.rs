//! Which client an HTTP request comes from, without trusting what a client
//! can forge.

use std::net::IpAddr;

use http::HeaderMap;

use crate::networks::Allowlist;

/// Which header the trusted proxies write. Only that one is read: a header
/// the proxies pass through untouched is the client's own to forge (nginx
/// and most load balancers append to `X-Forwarded-For` and leave a client's
/// `Forwarded` as it came).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// The most forwarding hops read from headers: a hostile client can send
/// thousands, and none past the proxies in front of us matters.
const MAX_HOPS: usize = 32;

/// The address a request should be limited by.
///
/// The peer address (the TCP connection's other end) is the client unless
/// the peer is one of the `trusted` proxies; only then is the `header` the
/// proxies write read, from the right:
/// each trusted proxy appends the address it received from, so the first
/// address from the right that is not a trusted proxy is the client.
/// Anything malformed ends the walk at the last address known to be good.
/// A client that is not behind a trusted proxy cannot choose its key by
/// sending headers (tower_governor's "smart" extractor trusts them: spoofed
/// keys).
///
/// ```
/// use std::net::IpAddr;
/// use http::HeaderMap;
/// use buttress_limit::{allow_networks, client_ip, ProxyHeader};
///
/// let proxies = allow_networks(&["10.0.0.0/8"])?;
/// let mut h = HeaderMap::new();
/// h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse()?);
/// let peer: IpAddr = "10.0.0.2".parse()?;
/// let xff = ProxyHeader::XForwardedFor;
/// assert_eq!(client_ip(peer, &h, xff, &proxies), "203.0.113.9".parse::<IpAddr>()?);
/// // The same headers from an untrusted peer are ignored.
/// let peer: IpAddr = "198.51.100.1".parse()?;
/// assert_eq!(client_ip(peer, &h, xff, &proxies), peer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    header: ProxyHeader,
    trusted: &(impl Allowlist<IpAddr> + ?Sized),
) -> IpAddr {
    if !trusted.allows(&peer) {
        return peer;
    }
    let hops = match header {
        ProxyHeader::XForwardedFor => x_forwarded_for(headers),
        ProxyHeader::Forwarded => forwarded_for(headers),
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) => {
                client = ip;
                if !trusted.allows(&ip) {
                    return ip;
                }
            }
            // Unparseable (obfuscated, "unknown", garbage): stop trusting.
            None => return client,
        }
    }
    client
}

/// The `for=` addresses of `Forwarded`, in order, at most [`MAX_HOPS`] (the
/// last ones, which are the ones nearest to us).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            for pair in element.split(';') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                if k.trim().eq_ignore_ascii_case("for") {
                    hops.push(parse_node(v.trim().trim_matches('"')));
                }
            }
        }
    }
    last(hops)
}

/// The addresses of `X-Forwarded-For`, in order, at most [`MAX_HOPS`].
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(v) => hops.extend(v.split(',').map(|s| parse_node(s.trim()))),
            Err(_) => hops.push(None),
        }
    }
    last(hops)
}

fn last(mut hops: Vec<Option<IpAddr>>) -> Vec<Option<IpAddr>> {
    hops.drain(..hops.len().saturating_sub(MAX_HOPS));
    hops
}

/// An address, possibly with a port, possibly bracketed (`[2001:db8::1]:80`).
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest[..end].parse().ok();
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    // v4 with a port.
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow_networks;

    const X: ProxyHeader = ProxyHeader::XForwardedFor;
    const F: ProxyHeader = ProxyHeader::Forwarded;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn walks_from_the_right_past_trusted_proxies() {
        let t = allow_networks(&["10.0.0.0/8", "fd00::/8"]).expect("valid");
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7")]);
        // 1.1.1.1 was written by the client itself: not believed.
        assert_eq!(client_ip(ip("10.0.0.2"), &h, X, &t), ip("203.0.113.9"));
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http, for="[2001:db8::7]:4711", for=10.1.2.3"#,
        )]);
        assert_eq!(client_ip(ip("fd00::1"), &h, F, &t), ip("2001:db8::7"));
        // Only the configured header is read: a client's own Forwarded is
        // ignored behind a proxy that writes X-Forwarded-For, and the other
        // way round.
        let h = headers(&[
            ("forwarded", "for=127.0.0.1"),
            ("x-forwarded-for", "192.0.2.2"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, X, &t), ip("192.0.2.2"));
        assert_eq!(client_ip(ip("10.0.0.1"), &h, F, &t), ip("127.0.0.1"));
        // Only trusted hops: the leftmost is the best we know.
        let h = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.8")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, X, &t), ip("10.0.0.9"));
        // Split across several header lines.
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.4"),
            ("x-forwarded-for", "10.0.0.3"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, X, &t), ip("198.51.100.4"));
    }

    #[test]
    fn hostile_headers_do_not_move_the_key() {
        let t = allow_networks(&["10.0.0.0/8"]).expect("valid");
        // From an untrusted peer, headers are ignored.
        let h = headers(&[
            ("x-forwarded-for", "127.0.0.1"),
            ("forwarded", "for=127.0.0.1"),
        ]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, X, &t), ip("198.51.100.1"));
        // Garbage stops the walk at the last good address.
        for bad in [
            "unknown",
            "_hidden",
            "not an ip",
            "1.2.3.4.5",
            "[::1",
            "999.1.1.1:80",
            "",
        ] {
            let h = headers(&[("x-forwarded-for", &format!("{bad}, 10.0.0.5"))]);
            assert_eq!(
                client_ip(ip("10.0.0.1"), &h, X, &t),
                ip("10.0.0.5"),
                "{bad:?}"
            );
        }
        // Thousands of hops: only the nearest 32 are read.
        let many = (0..5000)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
            .collect::<Vec<_>>()
            .join(", ");
        let h = headers(&[("x-forwarded-for", &format!("203.0.113.1, {many}"))]);
        // All of those are trusted: the leftmost read, hop 4968, is the answer.
        assert_eq!(client_ip(ip("10.0.0.1"), &h, X, &t), ip("10.0.19.218"));
        // Exactly 32 hops are all read; a 33rd (the leftmost) is not.
        let hops = |n: usize| {
            let proxies = (1..n).map(|i| format!("10.1.0.{i}")).collect::<Vec<_>>();
            format!("203.0.113.1, {}", proxies.join(", "))
        };
        let h = headers(&[("x-forwarded-for", &hops(32))]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, X, &t), ip("203.0.113.1"));
        let h = headers(&[("x-forwarded-for", &hops(33))]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, X, &t), ip("10.1.0.1"));
        // Ports and v4-in-brackets forms.
        let h = headers(&[("x-forwarded-for", "192.0.2.9:5000")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, X, &t), ip("192.0.2.9"));
    }

    #[test]
    fn any_predicate_will_do_even_a_borrowed_one() {
        let trusted = [ip("10.0.0.1")];
        let h = headers(&[("x-forwarded-for", "203.0.113.4")]);
        // A closure borrowing local state, and a `&dyn Fn`.
        let borrowed = |a: &IpAddr| trusted.contains(a);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, X, &borrowed),
            ip("203.0.113.4")
        );
        let dynamic: &dyn Fn(&IpAddr) -> bool = &borrowed;
        assert_eq!(client_ip(ip("10.0.0.1"), &h, X, dynamic), ip("203.0.113.4"));
        assert_eq!(client_ip(ip("10.0.0.2"), &h, X, dynamic), ip("10.0.0.2"));
    }
}
