package egress

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

var (
	loopbackIPv4 = netip.MustParseAddr("127.0.0.1")
	loopbackIPv6 = netip.IPv6Loopback()
)

// CheckURL checks the host of a webhook URL when the URL is registered,
// before any DNS lookup:
//
//   - An IP address, including bracketed IPv6 such as [::1] and IPv4-mapped
//     forms such as [::ffff:127.0.0.1], is decided by Check.
//   - "localhost" and names ending in ".localhost" resolve to loopback
//     (RFC 6761). They pass only if the allow list contains 127.0.0.1 or ::1.
//   - A host whose last label is a number, such as "127.1", "2130706433",
//     "0x7f000001" or "0177.0.0.1", is rejected. Go's net.ParseIP rejects
//     these, so Go hands them to the resolver, but resolvers built on the C
//     library's inet_aton and browsers following the WHATWG URL Standard
//     read them as IPv4 addresses. If the address the host stands for is
//     blocked, the error wraps ErrBlocked. Otherwise it wraps ErrInvalidHost
//     and names the dotted-decimal form to use instead. No delegated
//     top-level domain has this form, so no working host name is rejected.
//   - Any other host name passes. Its addresses are checked at dial time by
//     the dialer from Guard.Dialer.
//
// A trailing dot and letter case in the host are ignored. CheckURL does not
// check the scheme, user information or path.
//
// NOTE: CheckURL does not apply IDNA mapping, so a non-ASCII host such as
// fullwidth "ｌｏｃａｌｈｏｓｔ", which net/http maps to "localhost", passes here
// and is blocked only at dial time.
func (g *Guard) CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", rawURL, err)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("URL %q has no host", rawURL)
	}
	return g.checkHost(host)
}

func (g *Guard) checkHost(host string) error {
	name := strings.ToLower(strings.TrimSuffix(host, "."))

	if ip, err := netip.ParseAddr(name); err == nil {
		return g.Check(ip)
	}

	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		if g.Check(loopbackIPv6) == nil {
			return nil
		}
		if err := g.Check(loopbackIPv4); err != nil {
			return fmt.Errorf("host %q is a loopback name (RFC 6761): %w", host, err)
		}
		return nil
	}

	last := name[strings.LastIndexByte(name, '.')+1:]
	if !isNumericLabel(last) {
		return nil
	}
	ip, ok := parseLooseIPv4(name)
	if !ok {
		return fmt.Errorf("%w %q: the host ends in a number but is not an IPv4 address. "+
			"Use a host name or a dotted-decimal IPv4 address such as 192.0.2.1", ErrInvalidHost, host)
	}
	if err := g.Check(ip); err != nil {
		return fmt.Errorf("host %q is the IPv4 address %s in another notation: %w", host, ip, err)
	}
	return fmt.Errorf("%w %q: the host is the IPv4 address %s in a notation that resolvers read differently. "+
		"Write it as %s", ErrInvalidHost, host, ip, ip)
}

// isNumericLabel reports whether a DNS label is a decimal, octal or
// hexadecimal number as inet_aton reads it, such as "1", "0177" or "0x7f".
func isNumericLabel(label string) bool {
	if label == "" {
		return false
	}
	digits := label
	if hex, ok := strings.CutPrefix(digits, "0x"); ok {
		if hex == "" {
			return true
		}
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return strings.Trim(digits, "0123456789") == ""
}

// parseLooseIPv4 parses an IPv4 address in the notations that inet_aton
// accepts: one to four parts separated by dots, each decimal, octal (with a
// leading 0) or hexadecimal (with a leading 0x), where the last part fills
// the remaining bytes, so that "127.1" is 127.0.0.1 and "2130706433" is
// 127.0.0.1. The host must be lowercase without a trailing dot.
func parseLooseIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}

	var value uint64
	for i, part := range parts {
		n, ok := parseLoosePart(part)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 0xff {
				return netip.Addr{}, false
			}
			value |= n << (8 * (3 - i))
			continue
		}
		// The last part fills the bytes that the earlier parts left.
		if n >= 1<<(8*(4-i)) {
			return netip.Addr{}, false
		}
		value |= n
	}
	return netip.AddrFrom4([4]byte{byte(value >> 24), byte(value >> 16), byte(value >> 8), byte(value)}), true
}

func parseLoosePart(part string) (uint64, bool) {
	base := 10
	digits := part
	switch {
	case strings.HasPrefix(part, "0x"):
		base, digits = 16, part[2:]
		if digits == "" {
			// The WHATWG URL Standard reads a bare "0x" as 0.
			return 0, true
		}
	case len(part) > 1 && part[0] == '0':
		base, digits = 8, part[1:]
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, false
	}
	return n, true
}
