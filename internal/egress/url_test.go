package egress

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	const (
		allowed = iota
		blocked
		invalidHost
		invalidURL
	)
	tests := []struct {
		url  string
		want int
		// wantText is a substring of the error message.
		wantText string
	}{
		{url: "https://example.com/hook", want: allowed},
		{url: "https://hooks.example.com:8443/x?y=1", want: allowed},
		{url: "http://8.8.8.8/", want: allowed},
		{url: "http://[2606:4700::1]:443/", want: allowed},
		{url: "http://localhost.example.com/", want: allowed},
		{url: "http://mylocalhost/", want: allowed},
		{url: "http://127.0.0.1.example.com/", want: allowed},
		{url: "http://example.com./", want: allowed},

		{url: "http://127.0.0.1:8080/hook", want: blocked, wantText: "--allow-destination 127.0.0.0/8"},
		{url: "http://user@127.0.0.1/", want: blocked},
		{url: "http://127.0.0.1./", want: blocked},
		{url: "http://[::1]/", want: blocked, wantText: "::1/128"},
		{url: "http://[::ffff:127.0.0.1]/", want: blocked, wantText: "127.0.0.0/8"},
		{url: "http://[::ffff:7f00:1]/", want: blocked},
		{url: "http://[64:ff9b::7f00:1]/", want: blocked},
		{url: "http://169.254.169.254/latest/meta-data/", want: blocked, wantText: "169.254.169.254/32"},
		{url: "http://[fd00:ec2::254]/latest/meta-data/", want: blocked},
		{url: "http://[fe80::1%25eth0]/", want: blocked},
		{url: "http://0.0.0.0/", want: blocked},
		{url: "http://10.0.0.1/", want: blocked},
		{url: "http://192.168.0.1/", want: blocked},

		{url: "http://localhost/", want: blocked, wantText: `host "localhost" is a loopback name`},
		{url: "http://localhost:9000/hook", want: blocked},
		{url: "http://LOCALHOST./", want: blocked},
		{url: "http://api.localhost/", want: blocked},

		// Numeric hosts that inet_aton reads as IPv4 addresses.
		{url: "http://2130706433/", want: blocked, wantText: "127.0.0.1"},
		{url: "http://0x7f000001/", want: blocked, wantText: "127.0.0.1"},
		{url: "http://0X7F.1/", want: blocked},
		{url: "http://127.1/", want: blocked},
		{url: "http://127.0.1/", want: blocked},
		{url: "http://0177.0.0.1/", want: blocked},
		{url: "http://017700000001/", want: blocked},
		{url: "http://0x7f.0x0.0x0.0x1/", want: blocked},
		{url: "http://10.1/", want: blocked, wantText: "10.0.0.1"},
		{url: "http://0/", want: blocked, wantText: "0.0.0.0"},
		{url: "http://0x/", want: blocked},
		{url: "http://2852039166/", want: blocked, wantText: "169.254.169.254"},

		// Numeric hosts for public addresses are rejected, with the standard form.
		{url: "http://134744072/", want: invalidHost, wantText: "Write it as 8.8.8.8"},
		{url: "http://8.8.8.010/", want: invalidHost, wantText: "8.8.8.8"},
		{url: "http://1.2.3.4.5/", want: invalidHost},
		{url: "http://256.1.1.1/", want: invalidHost},
		{url: "http://1.256.1.1/", want: invalidHost},
		{url: "http://1.1.65536/", want: invalidHost},
		{url: "http://08.1.1.1/", want: invalidHost},
		{url: "http://0xg.1/", want: invalidHost},
		{url: "http://hooks.0xg/", want: allowed},
		{url: "http://4294967296/", want: invalidHost},
		{url: "http://example.123/", want: invalidHost},
		{url: "http://..1/", want: invalidHost},

		{url: "http://[::1", want: invalidURL},
		{url: "mailto:ops@example.com", want: invalidURL, wantText: "has no host"},
		{url: "/relative/path", want: invalidURL, wantText: "has no host"},
	}

	g := NewGuard(nil)
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := g.CheckURL(tt.url)
			switch tt.want {
			case allowed:
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tt.url, err)
				}
			case blocked:
				if !errors.Is(err, ErrBlocked) {
					t.Fatalf("CheckURL(%q) = %v, want ErrBlocked", tt.url, err)
				}
			case invalidHost:
				if !errors.Is(err, ErrInvalidHost) {
					t.Fatalf("CheckURL(%q) = %v, want ErrInvalidHost", tt.url, err)
				}
			case invalidURL:
				if err == nil || errors.Is(err, ErrBlocked) || errors.Is(err, ErrInvalidHost) {
					t.Fatalf("CheckURL(%q) = %v, want an invalid URL error", tt.url, err)
				}
			}
			if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("CheckURL(%q) error %q does not contain %q", tt.url, err, tt.wantText)
			}
		})
	}
}

func TestCheckURLAllowList(t *testing.T) {
	tests := []struct {
		allow string
		url   string
	}{
		{allow: "127.0.0.0/8", url: "http://127.0.0.1:8080/"},
		{allow: "127.0.0.0/8", url: "http://localhost:8080/"},
		{allow: "::1/128", url: "http://localhost/"},
		{allow: "::1/128", url: "http://[::1]/"},
		{allow: "10.0.0.0/8", url: "http://10.1.2.3/"},
		{allow: "169.254.169.254/32", url: "http://169.254.169.254/"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			g := NewGuard([]netip.Prefix{netip.MustParsePrefix(tt.allow)})
			if err := g.CheckURL(tt.url); err != nil {
				t.Errorf("CheckURL(%q) with allow %s = %v, want nil", tt.url, tt.allow, err)
			}
		})
	}
}

func TestCheckURLAllowedNumericHost(t *testing.T) {
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	err := g.CheckURL("http://127.1/")
	if !errors.Is(err, ErrInvalidHost) {
		t.Fatalf("CheckURL(http://127.1/) with loopback allowed = %v, want ErrInvalidHost", err)
	}
	if !strings.Contains(err.Error(), "Write it as 127.0.0.1") {
		t.Errorf("error %q does not name the dotted-decimal form 127.0.0.1", err)
	}
}

func TestParseLooseIPv4(t *testing.T) {
	tests := []struct {
		host string
		want string
	}{
		{host: "127.0.0.1", want: "127.0.0.1"},
		{host: "127.1", want: "127.0.0.1"},
		{host: "127.0.1", want: "127.0.0.1"},
		{host: "2130706433", want: "127.0.0.1"},
		{host: "0x7f000001", want: "127.0.0.1"},
		{host: "0177.0.0.01", want: "127.0.0.1"},
		{host: "0x7f.0x1", want: "127.0.0.1"},
		{host: "1.2.65535", want: "1.2.255.255"},
		{host: "4294967295", want: "255.255.255.255"},
		{host: "4294967296"},
		{host: "1.2.65536"},
		{host: "256.1"},
		{host: "1.2.3.4.5"},
		{host: "09.1.1.1"},
		{host: "1..1"},
		{host: "a.1"},
		{host: "+1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, ok := parseLooseIPv4(tt.host)
			if tt.want == "" {
				if ok {
					t.Errorf("parseLooseIPv4(%q) = %s, want no address", tt.host, got)
				}
				return
			}
			if !ok || got.String() != tt.want {
				t.Errorf("parseLooseIPv4(%q) = %s, %t, want %s", tt.host, got, ok, tt.want)
			}
		})
	}
}
