package egress

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []string
	}{
		{name: "nil", values: nil, want: nil},
		{name: "empty value", values: []string{""}, want: nil},
		{name: "separators only", values: []string{" , ,\t"}, want: nil},
		{name: "one prefix", values: []string{"10.0.0.0/8"}, want: []string{"10.0.0.0/8"}},
		{name: "bare IPv4", values: []string{"127.0.0.1"}, want: []string{"127.0.0.1/32"}},
		{name: "bare IPv6", values: []string{"::1"}, want: []string{"::1/128"}},
		{name: "IPv6 prefix", values: []string{"FD00:EC2::/32"}, want: []string{"fd00:ec2::/32"}},
		{name: "commas", values: []string{"10.0.0.0/8,192.168.0.0/16"}, want: []string{"10.0.0.0/8", "192.168.0.0/16"}},
		{name: "comma and space", values: []string{"10.0.0.0/8, 192.168.0.0/16"}, want: []string{"10.0.0.0/8", "192.168.0.0/16"}},
		{name: "spaces and newline", values: []string{"10.0.0.0/8 ::1\n127.0.0.0/8"}, want: []string{"10.0.0.0/8", "::1/128", "127.0.0.0/8"}},
		{name: "trailing comma", values: []string{"10.0.0.0/8,"}, want: []string{"10.0.0.0/8"}},
		{name: "several values", values: []string{"10.0.0.0/8", "::1"}, want: []string{"10.0.0.0/8", "::1/128"}},
		{name: "mapped prefix", values: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{name: "mapped address", values: []string{"::ffff:10.1.2.3"}, want: []string{"10.1.2.3/32"}},
		{name: "everything", values: []string{"0.0.0.0/0"}, want: []string{"0.0.0.0/0"}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrefixes(tt.values)
			if err != nil {
				t.Fatalf("ParsePrefixes(%q) error: %v", tt.values, err)
			}
			var gotStrings []string
			for _, p := range got {
				gotStrings = append(gotStrings, p.String())
			}
			if !slices.Equal(gotStrings, tt.want) {
				t.Errorf("ParsePrefixes(%q) = %v, want %v", tt.values, gotStrings, tt.want)
			}
		})
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		// wantText lists substrings of the error message.
		wantText []string
	}{
		{name: "host name", values: []string{"example.com"}, wantText: []string{`"example.com"`, "10.0.0.0/8"}},
		{name: "length too long", values: []string{"10.0.0.0/33"}, wantText: []string{`"10.0.0.0/33"`, "out of range"}},
		{name: "IPv6 length too long", values: []string{"::/129"}, wantText: []string{`"::/129"`}},
		{name: "missing length", values: []string{"10.0.0.0/"}, wantText: []string{`"10.0.0.0/"`}},
		{name: "missing address", values: []string{"/8"}, wantText: []string{`"/8"`}},
		{name: "host bits set", values: []string{"10.1.2.3/8"}, wantText: []string{`"10.1.2.3/8"`, "10.0.0.0/8", "10.1.2.3/32"}},
		{name: "zone", values: []string{"fe80::1%eth0"}, wantText: []string{`"fe80::1%eth0"`, "zones are not supported"}},
		{name: "zone in prefix", values: []string{"fe80::%eth0/64"}, wantText: []string{`"fe80::%eth0/64"`}},
		{name: "leading zero", values: []string{"010.0.0.1"}, wantText: []string{`"010.0.0.1"`}},
		{name: "short IPv4", values: []string{"127.1"}, wantText: []string{`"127.1"`}},
		{name: "bad entry after good", values: []string{"10.0.0.0/8, nonsense"}, wantText: []string{`"nonsense"`}},
		{name: "bad second value", values: []string{"10.0.0.0/8", "::1/200"}, wantText: []string{`"::1/200"`}},
		{name: "semicolon separator", values: []string{"10.0.0.0/8;192.168.0.0/16"}, wantText: []string{`"10.0.0.0/8;192.168.0.0/16"`}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrefixes(tt.values)
			if err == nil {
				t.Fatalf("ParsePrefixes(%q) = %v, want an error", tt.values, got)
			}
			if got != nil {
				t.Errorf("ParsePrefixes(%q) returned %v with the error, want nil", tt.values, got)
			}
			for _, text := range tt.wantText {
				if !strings.Contains(err.Error(), text) {
					t.Errorf("error %q does not contain %q", err, text)
				}
			}
		})
	}
}

func TestParsePrefixesNetipMessage(t *testing.T) {
	_, err := ParsePrefixes([]string{"10.0.0.0/33"})
	if err == nil {
		t.Fatal("ParsePrefixes(10.0.0.0/33) = nil error, want an error")
	}
	if strings.Contains(err.Error(), "netip.ParsePrefix") {
		t.Errorf("error %q repeats the netip call", err)
	}
}

func TestParsePrefixesGuard(t *testing.T) {
	prefixes, err := ParsePrefixes([]string{"127.0.0.0/8, ::1"})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(prefixes)
	for _, addr := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"} {
		if err := g.Check(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("Check(%s) = %v, want nil", addr, err)
		}
	}
}
