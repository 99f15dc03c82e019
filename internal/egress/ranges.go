package egress

import "net/netip"

// blockedRange is a range that hookd does not connect to unless the operator
// allows it.
type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// blockedRanges lists the blocked ranges. Check reports the first entry that
// contains the address, so a narrower entry comes before the entry that
// contains it. The list follows the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890) and blocks every entry that is not globally reachable,
// plus the cloud metadata addresses. IPv4-mapped IPv6 addresses (::ffff:0:0/96)
// are not listed because Check converts them to IPv4 first, and the NAT64
// prefix 64:ff9b::/96 and the 6to4 prefix 2002::/16 are not listed because
// Check decides them by the IPv4 address they embed (see embeddedIPv4).
var blockedRanges = []blockedRange{
	// IPv4.
	r("255.255.255.255/32", "the limited broadcast address (RFC 919)"),
	// Linux delivers a connection to 0.0.0.0 to the local host.
	r("0.0.0.0/32", "the unspecified address"),
	r("0.0.0.0/8", `the "this network" block (RFC 1122)`),
	r("10.0.0.0/8", "a private network (RFC 1918)"),
	// Besides carrier-grade NAT, Alibaba Cloud serves its instance metadata
	// at 100.100.100.200 inside this range.
	r("100.64.0.0/10", "the carrier-grade NAT shared address space (RFC 6598)"),
	r("127.0.0.0/8", "loopback (RFC 1122)"),
	// AWS, Google Cloud, Azure, Oracle Cloud and OpenStack serve instance
	// metadata, including credentials, at 169.254.169.254.
	r("169.254.169.254/32", "the cloud instance metadata service (link-local)"),
	r("169.254.0.0/16", "link-local (RFC 3927)"),
	r("172.16.0.0/12", "a private network (RFC 1918)"),
	// Contains the DS-Lite (192.0.0.0/29, RFC 6333) and NAT64 discovery
	// (192.0.0.170/31, RFC 7050) addresses, which exist only inside the
	// operator's network.
	r("192.0.0.0/24", "reserved for IETF protocol assignments (RFC 6890)"),
	r("192.0.2.0/24", "reserved for documentation (RFC 5737)"),
	r("192.88.99.0/24", "the deprecated 6to4 relay anycast block (RFC 7526)"),
	r("192.168.0.0/16", "a private network (RFC 1918)"),
	// Some networks use this range internally because it is never routed on
	// the internet.
	r("198.18.0.0/15", "reserved for benchmarking (RFC 2544)"),
	r("198.51.100.0/24", "reserved for documentation (RFC 5737)"),
	r("203.0.113.0/24", "reserved for documentation (RFC 5737)"),
	r("224.0.0.0/4", "multicast (RFC 5771)"),
	r("240.0.0.0/4", "reserved for future use (RFC 1112)"),

	// IPv6.
	r("::/128", "the unspecified address (RFC 4291)"),
	r("::1/128", "loopback (RFC 4291)"),
	// IPv4-compatible addresses such as ::127.0.0.1 served automatic tunnels
	// to the IPv4 address they contain before RFC 4291 deprecated them.
	r("::/96", "the deprecated IPv4-compatible block (RFC 4291)"),
	// A local-use NAT64 prefix translates into the operator's own IPv4
	// network, and its layout is chosen by the operator, so the embedded IPv4
	// address cannot be read reliably.
	r("64:ff9b:1::/48", "the local-use NAT64 block (RFC 8215)"),
	r("100::/64", "the discard-only block (RFC 6666)"),
	// A Teredo address tunnels to an IPv4 client address stored inverted in
	// its last 32 bits. Teredo is a tunnel for clients behind NAT, not for
	// servers, so the whole prefix is blocked instead of decoding that address.
	r("2001::/32", "Teredo (RFC 4380)"),
	r("2001::/23", "reserved for IETF protocol assignments (RFC 2928)"),
	r("2001:db8::/32", "reserved for documentation (RFC 3849)"),
	r("3fff::/20", "reserved for documentation (RFC 9637)"),
	// AWS serves instance metadata over IPv6 at this address inside fc00::/7.
	r("fd00:ec2::254/128", "the AWS instance metadata service"),
	r("fc00::/7", "a unique local network (RFC 4193)"),
	r("fe80::/10", "link-local (RFC 4291)"),
	r("fec0::/10", "the deprecated site-local block (RFC 3879)"),
	r("ff00::/8", "multicast (RFC 4291)"),
	// Everything outside 2000::/3 is reserved or has one of the special
	// purposes listed above. These three prefixes cover it.
	r("::/3", "outside the IPv6 global unicast block 2000::/3 (RFC 4291)"),
	r("4000::/2", "outside the IPv6 global unicast block 2000::/3 (RFC 4291)"),
	r("8000::/1", "outside the IPv6 global unicast block 2000::/3 (RFC 4291)"),
}

func r(prefix, reason string) blockedRange {
	return blockedRange{prefix: netip.MustParsePrefix(prefix), reason: reason}
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address that a NAT64 address (64:ff9b::/96,
// RFC 6052) or a 6to4 address (2002::/16, RFC 3056) routes to, and the name
// of the scheme. A NAT64 gateway forwards to the IPv4 address in the last 32
// bits, and a 6to4 relay forwards to the IPv4 address in bits 16 to 47.
func embeddedIPv4(ip netip.Addr) (netip.Addr, string, bool) {
	if !ip.Is6() {
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64, RFC 6052", true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4, RFC 3056", true
	}
	return netip.Addr{}, "", false
}
