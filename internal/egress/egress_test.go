package egress

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckBlocked(t *testing.T) {
	tests := []struct {
		addr      string
		wantRange string
		// wantEmbedded is the IPv4 address a NAT64 or 6to4 address embeds.
		wantEmbedded string
	}{
		{addr: "127.0.0.1", wantRange: "127.0.0.0/8"},
		{addr: "127.255.255.254", wantRange: "127.0.0.0/8"},
		{addr: "::1", wantRange: "::1/128"},
		{addr: "10.0.0.1", wantRange: "10.0.0.0/8"},
		{addr: "10.255.255.255", wantRange: "10.0.0.0/8"},
		{addr: "172.16.0.1", wantRange: "172.16.0.0/12"},
		{addr: "172.31.255.255", wantRange: "172.16.0.0/12"},
		{addr: "192.168.1.1", wantRange: "192.168.0.0/16"},
		{addr: "fc00::1", wantRange: "fc00::/7"},
		{addr: "fd12:3456::1", wantRange: "fc00::/7"},
		{addr: "169.254.169.254", wantRange: "169.254.169.254/32"},
		{addr: "169.254.0.1", wantRange: "169.254.0.0/16"},
		{addr: "169.254.170.2", wantRange: "169.254.0.0/16"},
		{addr: "fe80::1", wantRange: "fe80::/10"},
		{addr: "fe80::1%eth0", wantRange: "fe80::/10"},
		{addr: "0.0.0.0", wantRange: "0.0.0.0/32"},
		{addr: "0.1.2.3", wantRange: "0.0.0.0/8"},
		{addr: "::", wantRange: "::/128"},
		{addr: "224.0.0.1", wantRange: "224.0.0.0/4"},
		{addr: "239.255.255.250", wantRange: "224.0.0.0/4"},
		{addr: "ff02::1", wantRange: "ff00::/8"},
		{addr: "ff05::1:3", wantRange: "ff00::/8"},
		{addr: "255.255.255.255", wantRange: "255.255.255.255/32"},
		{addr: "240.0.0.1", wantRange: "240.0.0.0/4"},
		{addr: "100.64.0.1", wantRange: "100.64.0.0/10"},
		{addr: "100.127.255.255", wantRange: "100.64.0.0/10"},
		{addr: "100.100.100.200", wantRange: "100.64.0.0/10"},
		{addr: "192.0.0.8", wantRange: "192.0.0.0/24"},
		{addr: "192.0.2.1", wantRange: "192.0.2.0/24"},
		{addr: "192.88.99.1", wantRange: "192.88.99.0/24"},
		{addr: "198.18.0.1", wantRange: "198.18.0.0/15"},
		{addr: "198.19.255.255", wantRange: "198.18.0.0/15"},
		{addr: "198.51.100.1", wantRange: "198.51.100.0/24"},
		{addr: "203.0.113.1", wantRange: "203.0.113.0/24"},

		// IPv4-mapped IPv6 addresses are checked as IPv4.
		{addr: "::ffff:127.0.0.1", wantRange: "127.0.0.0/8"},
		{addr: "::ffff:7f00:1", wantRange: "127.0.0.0/8"},
		{addr: "::ffff:169.254.169.254", wantRange: "169.254.169.254/32"},
		{addr: "::ffff:10.0.0.1", wantRange: "10.0.0.0/8"},
		{addr: "::ffff:0.0.0.0", wantRange: "0.0.0.0/32"},

		// NAT64 and 6to4 addresses are checked by the IPv4 address they embed.
		{addr: "64:ff9b::127.0.0.1", wantRange: "127.0.0.0/8", wantEmbedded: "127.0.0.1"},
		{addr: "64:ff9b::a9fe:a9fe", wantRange: "169.254.169.254/32", wantEmbedded: "169.254.169.254"},
		{addr: "64:ff9b::1", wantRange: "0.0.0.0/8", wantEmbedded: "0.0.0.1"},
		{addr: "2002:7f00:1::", wantRange: "127.0.0.0/8", wantEmbedded: "127.0.0.1"},
		{addr: "2002:a00:1::1", wantRange: "10.0.0.0/8", wantEmbedded: "10.0.0.1"},
		{addr: "2002:c0a8:101:1::1", wantRange: "192.168.0.0/16", wantEmbedded: "192.168.1.1"},

		{addr: "fd00:ec2::254", wantRange: "fd00:ec2::254/128"},
		{addr: "::127.0.0.1", wantRange: "::/96"},
		{addr: "::2", wantRange: "::/96"},
		{addr: "64:ff9b:1::a00:1", wantRange: "64:ff9b:1::/48"},
		{addr: "100::1", wantRange: "100::/64"},
		{addr: "2001::1", wantRange: "2001::/32"},
		{addr: "2001:2::1", wantRange: "2001::/23"},
		{addr: "2001:db8::1", wantRange: "2001:db8::/32"},
		{addr: "3fff::1", wantRange: "3fff::/20"},
		{addr: "fec0::1", wantRange: "fec0::/10"},
		{addr: "1::1", wantRange: "::/3"},
		{addr: "4000::1", wantRange: "4000::/2"},
		{addr: "5f00::1", wantRange: "4000::/2"},
		{addr: "8000::1", wantRange: "8000::/1"},
	}

	g := NewGuard(nil)
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := g.Check(netip.MustParseAddr(tt.addr))
			if !errors.Is(err, ErrBlocked) {
				t.Fatalf("Check(%s) = %v, want an error wrapping ErrBlocked", tt.addr, err)
			}
			var blocked *BlockedError
			if !errors.As(err, &blocked) {
				t.Fatalf("Check(%s) error %T is not a *BlockedError", tt.addr, err)
			}
			if got := blocked.Range.String(); got != tt.wantRange {
				t.Errorf("Range = %s, want %s", got, tt.wantRange)
			}
			if got := blocked.Addr.String(); got != tt.addr && got != netip.MustParseAddr(tt.addr).String() {
				t.Errorf("Addr = %s, want %s", got, tt.addr)
			}
			var gotEmbedded string
			if blocked.Embedded.IsValid() {
				gotEmbedded = blocked.Embedded.String()
			}
			if gotEmbedded != tt.wantEmbedded {
				t.Errorf("Embedded = %q, want %q", gotEmbedded, tt.wantEmbedded)
			}
			if !strings.Contains(err.Error(), "--allow-destination "+tt.wantRange) {
				t.Errorf("error %q does not name --allow-destination %s", err, tt.wantRange)
			}
		})
	}
}

func TestCheckPublic(t *testing.T) {
	addrs := []string{
		"8.8.8.8",
		"1.1.1.1",
		"9.255.255.255",
		"11.0.0.1",
		"100.63.255.255",
		"100.128.0.0",
		"126.255.255.255",
		"128.0.0.1",
		"169.253.255.255",
		"169.255.0.1",
		"172.15.255.255",
		"172.32.0.1",
		"192.0.1.1",
		"192.169.0.1",
		"198.17.255.255",
		"198.20.0.1",
		"223.255.255.255",
		"2606:4700::1",
		"2001:4860:4860::8888",
		"2a00:1450:4001::1",
		"2001:200::1",
		"3ffe::1",
		"::ffff:8.8.8.8",
		"64:ff9b::8.8.8.8",
		"2002:808:808::1",
	}

	g := NewGuard(nil)
	for _, addr := range addrs {
		t.Run(addr, func(t *testing.T) {
			if err := g.Check(netip.MustParseAddr(addr)); err != nil {
				t.Errorf("Check(%s) = %v, want nil", addr, err)
			}
		})
	}
}

func TestCheckAllowList(t *testing.T) {
	tests := []struct {
		name    string
		allow   []string
		addr    string
		blocked bool
	}{
		{name: "loopback allowed", allow: []string{"127.0.0.0/8"}, addr: "127.0.0.1"},
		{name: "mapped loopback allowed", allow: []string{"127.0.0.0/8"}, addr: "::ffff:127.0.0.1"},
		{name: "NAT64 of allowed", allow: []string{"127.0.0.0/8"}, addr: "64:ff9b::127.0.0.1"},
		{name: "6to4 of allowed", allow: []string{"127.0.0.0/8"}, addr: "2002:7f00:1::"},
		{name: "IPv6 loopback still blocked", allow: []string{"127.0.0.0/8"}, addr: "::1", blocked: true},
		{name: "private still blocked", allow: []string{"127.0.0.0/8"}, addr: "10.0.0.1", blocked: true},
		{name: "single address", allow: []string{"10.1.2.3/32"}, addr: "10.1.2.3"},
		{name: "neighbor of single", allow: []string{"10.1.2.3/32"}, addr: "10.1.2.4", blocked: true},
		{name: "mapped prefix", allow: []string{"::ffff:10.0.0.0/104"}, addr: "10.200.0.1"},
		{name: "unmasked prefix", allow: []string{"192.168.1.77/24"}, addr: "192.168.1.5"},
		{name: "metadata IPv6", allow: []string{"fd00:ec2::254/128"}, addr: "fd00:ec2::254"},
		{name: "other ULA blocked", allow: []string{"fd00:ec2::254/128"}, addr: "fd00::1", blocked: true},
		{name: "zone ignored", allow: []string{"fe80::/10"}, addr: "fe80::1%eth0"},
		{name: "NAT64 address itself", allow: []string{"64:ff9b::/96"}, addr: "64:ff9b::10.0.0.1"},
		{name: "all IPv4", allow: []string{"0.0.0.0/0"}, addr: "169.254.169.254"},
		{name: "all IPv4 not IPv6", allow: []string{"0.0.0.0/0"}, addr: "::1", blocked: true},
		{name: "several prefixes", allow: []string{"10.0.0.0/8", "::1/128"}, addr: "::1"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var allow []netip.Prefix
			for _, s := range tt.allow {
				allow = append(allow, netip.MustParsePrefix(s))
			}
			err := NewGuard(allow).Check(netip.MustParseAddr(tt.addr))
			if tt.blocked && !errors.Is(err, ErrBlocked) {
				t.Errorf("Check(%s) with allow %v = %v, want ErrBlocked", tt.addr, tt.allow, err)
			}
			if !tt.blocked && err != nil {
				t.Errorf("Check(%s) with allow %v = %v, want nil", tt.addr, tt.allow, err)
			}
		})
	}
}

func TestCheckNilGuard(t *testing.T) {
	var g *Guard
	if err := g.Check(netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrBlocked) {
		t.Errorf("nil Guard Check(127.0.0.1) = %v, want ErrBlocked", err)
	}
	if err := g.Check(netip.MustParseAddr("8.8.8.8")); err != nil {
		t.Errorf("nil Guard Check(8.8.8.8) = %v, want nil", err)
	}
}

func TestCheckInvalidAddr(t *testing.T) {
	err := NewGuard(nil).Check(netip.Addr{})
	if err == nil {
		t.Fatal("Check(zero Addr) = nil, want an error")
	}
	if errors.Is(err, ErrBlocked) {
		t.Errorf("Check(zero Addr) = %v, want an error that does not wrap ErrBlocked", err)
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{
			addr: "127.0.0.1",
			want: "destination 127.0.0.1 is blocked because 127.0.0.0/8 is loopback (RFC 1122). " +
				"To allow it, start hookd with --allow-destination 127.0.0.0/8 or a narrower prefix such as 127.0.0.1/32",
		},
		{
			addr: "fe80::1%eth0",
			want: "destination fe80::1%eth0 is blocked because fe80::/10 is link-local (RFC 4291). " +
				"To allow it, start hookd with --allow-destination fe80::/10 or a narrower prefix such as fe80::1/128",
		},
		{
			addr: "64:ff9b::a9fe:a9fe",
			want: "destination 64:ff9b::a9fe:a9fe is blocked because it embeds the IPv4 address 169.254.169.254 " +
				"(NAT64, RFC 6052) and 169.254.169.254/32 is the cloud instance metadata service (link-local). " +
				"To allow it, start hookd with --allow-destination 169.254.169.254/32",
		},
	}

	g := NewGuard(nil)
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := g.Check(netip.MustParseAddr(tt.addr))
			if err == nil {
				t.Fatalf("Check(%s) = nil, want an error", tt.addr)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("message:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCheckCoversNetipClasses checks a sample of addresses from every /8 of
// IPv4 and every /16 of IPv6 space: each address that net/netip classifies as
// loopback, private, link-local, multicast, unspecified or not global unicast
// must be blocked.
func TestCheckCoversNetipClasses(t *testing.T) {
	var addrs []netip.Addr
	for first := range 256 {
		for _, rest := range [][3]byte{{0, 0, 0}, {0, 0, 1}, {16, 0, 1}, {168, 0, 1}, {254, 169, 254}, {255, 255, 255}} {
			addrs = append(addrs, netip.AddrFrom4([4]byte{byte(first), rest[0], rest[1], rest[2]}))
		}
	}
	for high := 0; high < 0x10000; high += 0x40 {
		var b [16]byte
		b[0], b[1] = byte(high>>8), byte(high)
		addrs = append(addrs, netip.AddrFrom16(b))
		b[15] = 1
		addrs = append(addrs, netip.AddrFrom16(b))
	}

	g := NewGuard(nil)
	for _, addr := range addrs {
		special := addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
			addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() ||
			addr.IsUnspecified() || !addr.IsGlobalUnicast()
		if !special {
			continue
		}
		if err := g.Check(addr); !errors.Is(err, ErrBlocked) {
			t.Errorf("Check(%s) = %v, want ErrBlocked because net/netip classifies it as non-global", addr, err)
		}
	}
}

// TestBlockedRangesReachable fails if an entry can never match because an
// earlier entry contains it.
func TestBlockedRangesReachable(t *testing.T) {
	for j, later := range blockedRanges {
		for _, earlier := range blockedRanges[:j] {
			if earlier.prefix.Bits() <= later.prefix.Bits() && earlier.prefix.Contains(later.prefix.Addr()) {
				t.Errorf("%s (%s) is unreachable because the earlier entry %s contains it",
					later.prefix, later.reason, earlier.prefix)
			}
		}
		if later.prefix != later.prefix.Masked() {
			t.Errorf("%s is not masked", later.prefix)
		}
	}
}

func TestNewGuardNormalizes(t *testing.T) {
	g := NewGuard([]netip.Prefix{
		netip.MustParsePrefix("::ffff:10.0.0.0/104"),
		netip.MustParsePrefix("192.168.1.77/24"),
		{},
	})
	got := g.Allowed()
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.0/24")}
	if len(got) != len(want) {
		t.Fatalf("Allowed() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Allowed()[%d] = %s, want %s", i, got[i], want[i])
		}
	}
}
