//! Per-client-address rate limit on WHEP offers: a token bucket per address, in a bounded table.
//!
//! An offer costs the node a peer connection, UDP sockets and STUN work, so one address may send
//! `http.offers_per_s` offers per second with bursts of `http.offer_burst`; more get HTTP 429 with
//! `Retry-After`. 127.0.0.1 and ::1 are not limited (the node's own tools, a local proxy): for
//! them, admission alone (`webrtc.max_connecting`) keeps real viewers in. The table holds at most
//! [`MAX_TRACKED`] addresses; when it is full, buckets that have refilled (idle addresses) are
//! forgotten first, then the least recently seen. Time is an argument, so tests need no clock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at once.
pub const MAX_TRACKED: usize = 4096;

/// The client a per-address limit counts (offers here, connections in `server`): IPv4 as is,
/// IPv6 by its /64 (one subscriber's prefix); `None` for `127.0.0.1` and `::1` (also
/// IPv4-mapped), which are not limited, so the operator on the box always gets in.
pub fn address_key(ip: IpAddr) -> Option<IpAddr> {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4 == Ipv4Addr::LOCALHOST => None,
        IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => None,
        IpAddr::V6(v6) => Some(IpAddr::V6(Ipv6Addr::from(
            u128::from(v6) & (u128::MAX << 64),
        ))),
        v4 => Some(v4),
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The offer rate limit of one node.
#[derive(Debug)]
pub struct OfferLimiter {
    per_s: f64,
    burst: f64,
    table: Mutex<HashMap<IpAddr, Bucket>>,
}

impl OfferLimiter {
    /// `per_s` offers per second per address (0: no limit), bursts of `burst`.
    pub fn new(per_s: u32, burst: u32) -> Self {
        Self {
            per_s: f64::from(per_s),
            burst: f64::from(burst.max(1)),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one offer from `addr`'s bucket at `now`; `Err(wait)` when it is empty.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_s <= 0.0 {
            return Ok(());
        }
        // One bucket per client as the connection caps count it (an IPv6 client by its /64,
        // which it could otherwise walk through for fresh buckets); 127.0.0.1 and ::1 are free.
        let Some(addr) = address_key(addr) else {
            return Ok(());
        };
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if !table.contains_key(&addr) && table.len() >= MAX_TRACKED {
            self.make_room(&mut table, now);
        }
        let b = table.entry(addr).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * self.per_s;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_s))
        }
    }

    /// The configured rate, offers per second per address (0: no limit).
    pub fn per_second(&self) -> u32 {
        self.per_s as u32
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.table.lock().map_or(0, |t| t.len())
    }

    fn make_room(&self, table: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let full_after = Duration::from_secs_f64(self.burst / self.per_s);
        table.retain(|_, b| now.saturating_duration_since(b.last) < full_after);
        if table.len() >= MAX_TRACKED {
            let oldest = table.iter().min_by_key(|(_, b)| b.last).map(|(a, _)| *a);
            if let Some(a) = oldest {
                table.remove(&a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_burst_then_the_rate() {
        let l = OfferLimiter::new(2, 4);
        let t0 = Instant::now();
        let a = ip("192.0.2.7");
        for _ in 0..4 {
            assert_eq!(l.check(a, t0), Ok(()));
        }
        let wait = l.check(a, t0).expect_err("bucket empty");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        // Half a second later one more (2/s).
        assert_eq!(l.check(a, t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.check(a, t0 + Duration::from_millis(500)).is_err());
        // Another address has its own bucket.
        assert_eq!(l.check(ip("192.0.2.8"), t0), Ok(()));
    }

    #[test]
    fn loopback_127_0_0_1_is_not_limited_but_127_0_0_2_is() {
        let l = OfferLimiter::new(1, 1);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(l.check(ip("127.0.0.1"), t0), Ok(()));
            assert_eq!(l.check(ip("::1"), t0), Ok(()));
            assert_eq!(l.check(ip("::ffff:127.0.0.1"), t0), Ok(()));
        }
        assert_eq!(l.check(ip("127.0.0.2"), t0), Ok(()));
        assert!(l.check(ip("127.0.0.2"), t0).is_err());
    }

    #[test]
    fn an_ipv6_client_cannot_walk_its_64_for_fresh_buckets() {
        let l = OfferLimiter::new(1, 1);
        let t0 = Instant::now();
        assert_eq!(l.check(ip("2001:db8:1:2::1"), t0), Ok(()));
        assert!(l.check(ip("2001:db8:1:2::ffff"), t0).is_err());
        assert_eq!(l.check(ip("2001:db8:1:3::1"), t0), Ok(()));
    }

    #[test]
    fn zero_means_no_limit() {
        let l = OfferLimiter::new(0, 1);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(l.check(ip("192.0.2.1"), t0), Ok(()));
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = OfferLimiter::new(1, 2);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 500) {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(l.check(a, t0), Ok(()));
        }
        assert!(l.tracked() <= MAX_TRACKED, "{}", l.tracked());
    }

    #[test]
    fn address_keys() {
        let k = |s: &str| address_key(s.parse().expect("ip"));
        assert_eq!(k("127.0.0.1"), None);
        assert_eq!(k("::1"), None);
        assert_eq!(k("::ffff:127.0.0.1"), None);
        assert_eq!(k("127.0.0.2"), Some("127.0.0.2".parse().expect("ip")));
        assert_eq!(k("::ffff:10.0.0.1"), Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(
            k("2001:db8:1:2:aaaa::1"),
            Some("2001:db8:1:2::".parse().expect("ip"))
        );
    }
}
