package egress

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Dialer returns a dialer that checks every address it connects to. The
// dialer resolves a host name first and then calls its ControlContext
// function with each resolved IP address, after the socket is created and
// before it connects. The check therefore applies to the address the
// connection goes to, and no second DNS lookup can change it. A blocked
// address fails with an error that wraps ErrBlocked, and the dialer then
// tries the host's next address, if any. Only TCP and UDP networks are
// accepted. The resolver's own queries to the configured name servers are not
// checked.
//
// The timeouts match http.DefaultTransport in Go 1.26: 30 seconds to connect
// and a TCP keep-alive period of 30 seconds.
func (g *Guard) Dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:        30 * time.Second,
		KeepAlive:      30 * time.Second,
		Resolver:       g.dnsResolver(),
		ControlContext: g.control,
	}
}

// DialContext connects like g.Dialer().DialContext.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return g.Dialer().DialContext(ctx, network, address)
}

// Transport returns a copy of base, or of http.DefaultTransport if base is
// nil, that connects only through g.Dialer:
//
//   - Proxy is set to nil. A proxy from HTTP_PROXY or HTTPS_PROXY would
//     receive the connection instead of the destination, so the dialer would
//     check the proxy's address and the proxy would connect anywhere.
//   - DialTLSContext and DialTLS are set to nil, so TLS connections are also
//     opened by the checked DialContext and then wrapped in TLS by the
//     transport, using TLSClientConfig.
//   - Dial is set to nil, so DialContext is used.
//
// An http.Client using this transport checks every redirect target too,
// because each new connection goes through the dialer. Pooled connections
// are reused only for the host they were opened to.
func (g *Guard) Transport(base *http.Transport) *http.Transport {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	t := base.Clone()
	t.Proxy = nil
	t.DialContext = g.Dialer().DialContext
	t.DialTLSContext = nil
	// Dial and DialTLS are deprecated, but http.Transport still uses them when
	// they are set.
	t.DialTLS = nil
	t.Dial = nil
	return t
}

func (g *Guard) dnsResolver() *net.Resolver {
	if g == nil {
		return nil
	}
	return g.resolver
}

// control is the net.Dialer ControlContext function. The address is the
// resolved "ip:port" the socket is about to connect to.
func (g *Guard) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return fmt.Errorf("egress: network %q is not supported. Only TCP and UDP connections to IP addresses can be checked", network)
	}
	addrPort, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: cannot check dial address %q: %w", address, err)
	}
	return g.Check(addrPort.Addr())
}
