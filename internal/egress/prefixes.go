package egress

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// ParsePrefixes parses allowed destinations from --allow-destination values
// or the HOOKD_ALLOW_DESTINATIONS variable. Each value may hold several
// entries separated by commas or white space, and empty entries are skipped.
// An entry is a CIDR prefix such as 10.0.0.0/8 or fd00::/8, or a single IP
// address, which becomes a /32 or /128 prefix. IPv4-mapped IPv6 entries are
// converted to IPv4. A prefix with bits set after the prefix length, such as
// 10.1.2.3/8, is rejected because it is unclear whether the address or the
// network was meant. The error names the first invalid entry.
func ParsePrefixes(values []string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for _, value := range values {
		entries := strings.FieldsFunc(value, func(c rune) bool {
			return c == ',' || unicode.IsSpace(c)
		})
		for _, entry := range entries {
			p, err := parsePrefix(entry)
			if err != nil {
				return nil, err
			}
			prefixes = append(prefixes, p)
		}
	}
	return prefixes, nil
}

func parsePrefix(entry string) (netip.Prefix, error) {
	if !strings.Contains(entry, "/") {
		ip, err := netip.ParseAddr(entry)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid allowed destination %q: "+
				"use an IP address such as 10.1.2.3 or a CIDR prefix such as 10.0.0.0/8", entry)
		}
		if ip.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid allowed destination %q: "+
				"IPv6 zones are not supported. Remove %q", entry, "%"+ip.Zone())
		}
		return normalizePrefix(netip.PrefixFrom(ip, ip.BitLen())), nil
	}

	p, err := netip.ParsePrefix(entry)
	if err != nil {
		// netip prefixes its messages with the call and the input, which this
		// message already names.
		detail := strings.TrimPrefix(err.Error(), fmt.Sprintf("netip.ParsePrefix(%q): ", entry))
		return netip.Prefix{}, fmt.Errorf("invalid allowed destination %q: %s", entry, detail)
	}
	if masked := p.Masked(); masked != p {
		return netip.Prefix{}, fmt.Errorf("invalid allowed destination %q: "+
			"the address has bits set beyond the /%d prefix length. Use %s for the network or %s for the single address",
			entry, p.Bits(), masked, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return normalizePrefix(p), nil
}
