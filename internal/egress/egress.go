// Package egress decides which IP addresses hookd may connect to when it
// delivers webhooks, so that a registered webhook URL cannot reach the
// operator's own network. Loopback, private and link-local ranges, cloud
// metadata services and other special-purpose ranges are blocked unless the
// operator allows them with --allow-destination.
//
// The decision that counts is made at dial time, on the address the
// connection goes to after DNS resolution (see Guard.Dialer). CheckURL is an
// early check for URLs whose host is an IP address or a localhost name, so
// that the API can reject them when a consumer is created.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// FlagName is the command-line flag that adds allowed destination prefixes.
// Error messages name it as the way to allow a blocked address.
const FlagName = "allow-destination"

// EnvName is the environment variable that lists allowed destination
// prefixes, separated by commas or white space.
const EnvName = "HOOKD_ALLOW_DESTINATIONS"

// ErrBlocked is wrapped by every error that rejects a destination because of
// its address.
var ErrBlocked = errors.New("destination blocked")

// ErrInvalidHost is wrapped by the errors CheckURL returns for a host that is
// neither a standard IP address nor a usable host name, such as "1.2.3.4.5"
// or "134744072" (8.8.8.8 written as one decimal number). A host like this
// that stands for a blocked address gets an ErrBlocked error instead.
var ErrInvalidHost = errors.New("invalid host")

// Guard decides whether hookd may connect to an IP address. A Guard is safe
// for concurrent use, and a nil *Guard blocks the same ranges as a Guard with
// an empty allow list.
type Guard struct {
	allow []netip.Prefix

	// resolver is the resolver the dialer uses. Nil means net.DefaultResolver.
	// Tests set it to a resolver that reads only the hosts file.
	resolver *net.Resolver
}

// NewGuard returns a Guard that blocks the special-purpose ranges in
// blockedRanges except for addresses inside one of the allow prefixes.
// Prefixes are masked, and IPv4-mapped IPv6 prefixes such as
// ::ffff:10.0.0.0/104 are converted to their IPv4 form (10.0.0.0/8), because
// Check compares IPv4-mapped addresses in their IPv4 form. Invalid prefixes
// are ignored.
func NewGuard(allow []netip.Prefix) *Guard {
	g := &Guard{}
	for _, p := range allow {
		if !p.IsValid() {
			continue
		}
		g.allow = append(g.allow, normalizePrefix(p))
	}
	return g
}

// Allowed returns a copy of the normalized allow list.
func (g *Guard) Allowed() []netip.Prefix {
	if g == nil || len(g.allow) == 0 {
		return nil
	}
	return append([]netip.Prefix(nil), g.allow...)
}

// Check returns nil if hookd may connect to ip, and otherwise an error that
// wraps ErrBlocked (a *BlockedError) or, for an invalid address, a plain
// error. The zone of an IPv6 address is ignored, and an IPv4-mapped IPv6
// address is checked as the IPv4 address it contains.
func (g *Guard) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return errors.New("egress: invalid IP address")
	}
	err := g.check(ip.WithZone("").Unmap())
	if err != nil {
		err.Addr = ip
		return err
	}
	return nil
}

// check decides for an address without zone that is not IPv4-mapped.
func (g *Guard) check(ip netip.Addr) *BlockedError {
	if g.allows(ip) {
		return nil
	}

	if embedded, translation, ok := embeddedIPv4(ip); ok {
		inner := g.check(embedded)
		if inner == nil {
			return nil
		}
		inner.Addr = ip
		inner.Embedded = embedded
		inner.Translation = translation
		return inner
	}

	for _, r := range blockedRanges {
		if r.prefix.Contains(ip) {
			return &BlockedError{Addr: ip, Range: r.prefix, Reason: r.reason}
		}
	}
	return nil
}

func (g *Guard) allows(ip netip.Addr) bool {
	if g == nil {
		return false
	}
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// BlockedError reports a destination address inside a blocked range. It
// wraps ErrBlocked.
type BlockedError struct {
	// Addr is the address that was checked, with its zone if it had one.
	Addr netip.Addr
	// Embedded is the IPv4 address taken from a NAT64 or 6to4 Addr, and the
	// zero Addr otherwise.
	Embedded netip.Addr
	// Translation names the scheme that embeds Embedded in Addr.
	Translation string
	// Range is the blocked range that contains Addr, or Embedded if it is set.
	Range netip.Prefix
	// Reason describes Range, such as "loopback (RFC 1122)".
	Reason string
}

func (e *BlockedError) Error() string {
	blocked := e.Addr
	cause := fmt.Sprintf("%s is %s", e.Range, e.Reason)
	if e.Embedded.IsValid() {
		blocked = e.Embedded
		cause = fmt.Sprintf("it embeds the IPv4 address %s (%s) and %s", e.Embedded, e.Translation, cause)
	}
	single := netip.PrefixFrom(blocked.WithZone(""), blocked.BitLen())
	if e.Range.IsSingleIP() || e.Range == single {
		return fmt.Sprintf("destination %s is blocked because %s. To allow it, start hookd with --%s %s",
			e.Addr, cause, FlagName, e.Range)
	}
	return fmt.Sprintf("destination %s is blocked because %s. "+
		"To allow it, start hookd with --%s %s or a narrower prefix such as %s",
		e.Addr, cause, FlagName, e.Range, single)
}

func (e *BlockedError) Unwrap() error { return ErrBlocked }

func normalizePrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}
