package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// countingServer is an HTTP server on 127.0.0.1 that counts accepted
// connections and requests.
type countingServer struct {
	*httptest.Server
	conns    atomic.Int64
	requests atomic.Int64
}

func startServer(t *testing.T, useTLS bool, handler http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		handler(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func replyOK(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "delivered") }

// hostsFileResolver returns a resolver that reads only the hosts file. Its
// Dial function fails, so a test can never send a DNS query.
func hostsFileResolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(_ context.Context, network, address string) (net.Conn, error) {
			return nil, fmt.Errorf("DNS is disabled in tests (query over %s to %s)", network, address)
		},
	}
}

func testClient(g *Guard, base *http.Transport) *http.Client {
	return &http.Client{Transport: g.Transport(base), Timeout: 5 * time.Second}
}

func TestDialerControl(t *testing.T) {
	const (
		allowed = iota
		blocked
		invalid
	)
	tests := []struct {
		network string
		address string
		want    int
	}{
		{network: "tcp4", address: "8.8.8.8:443", want: allowed},
		{network: "tcp6", address: "[2606:4700::1]:443", want: allowed},
		{network: "udp4", address: "1.1.1.1:53", want: allowed},
		{network: "tcp4", address: "127.0.0.1:80", want: blocked},
		{network: "tcp4", address: "10.0.0.1:443", want: blocked},
		{network: "tcp4", address: "169.254.169.254:80", want: blocked},
		{network: "tcp6", address: "[::1]:80", want: blocked},
		{network: "tcp6", address: "[::ffff:127.0.0.1]:80", want: blocked},
		{network: "tcp6", address: "[fd00:ec2::254]:80", want: blocked},
		{network: "tcp6", address: "[fe80::1%eth0]:80", want: blocked},
		{network: "tcp6", address: "[64:ff9b::a9fe:a9fe]:80", want: blocked},
		{network: "udp6", address: "[ff02::fb]:5353", want: blocked},
		{network: "tcp", address: "0.0.0.0:80", want: blocked},
		{network: "tcp4", address: "example.com:80", want: invalid},
		{network: "tcp4", address: "8.8.8.8", want: invalid},
		{network: "unix", address: "/run/docker.sock", want: invalid},
		{network: "ip4:icmp", address: "8.8.8.8", want: invalid},
	}

	d := NewGuard(nil).Dialer()
	if d.ControlContext == nil {
		t.Fatal("Dialer().ControlContext is nil")
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			// The control function only inspects its arguments, so calling it
			// directly opens no socket.
			err := d.ControlContext(context.Background(), tt.network, tt.address, nil)
			switch tt.want {
			case allowed:
				if err != nil {
					t.Errorf("control(%s, %s) = %v, want nil", tt.network, tt.address, err)
				}
			case blocked:
				if !errors.Is(err, ErrBlocked) {
					t.Errorf("control(%s, %s) = %v, want ErrBlocked", tt.network, tt.address, err)
				}
			case invalid:
				if err == nil || errors.Is(err, ErrBlocked) {
					t.Errorf("control(%s, %s) = %v, want an error other than ErrBlocked", tt.network, tt.address, err)
				}
			}
		})
	}
}

func TestTransportBlocksLoopback(t *testing.T) {
	srv := startServer(t, false, replyOK)

	resp, err := testClient(NewGuard(nil), nil).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s succeeded with status %s, want ErrBlocked", srv.URL, resp.Status)
	}
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("GET %s error = %v, want ErrBlocked", srv.URL, err)
	}
	if !strings.Contains(err.Error(), "--allow-destination 127.0.0.0/8") {
		t.Errorf("error %q does not say how to allow loopback", err)
	}
	if got := srv.conns.Load(); got != 0 {
		t.Errorf("server accepted %d connections, want 0", got)
	}
}

func TestTransportAllowsLoopback(t *testing.T) {
	srv := startServer(t, false, replyOK)

	resp, err := testClient(NewGuard(loopbackOnly), nil).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s with loopback allowed: %v", srv.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %s, want 200 OK", resp.Status)
	}
	if string(body) != "delivered" {
		t.Errorf("body = %q, want %q", body, "delivered")
	}
	if got := srv.requests.Load(); got != 1 {
		t.Errorf("server handled %d requests, want 1", got)
	}
}

func TestTransportTLS(t *testing.T) {
	srv := startServer(t, true, replyOK)

	var tlsDials atomic.Int64
	base := srv.Client().Transport.(*http.Transport).Clone()
	base.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		tlsDials.Add(1)
		return tls.Dial(network, addr, base.TLSClientConfig)
	}

	_, err := testClient(NewGuard(nil), base).Get(srv.URL)
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("GET %s without allow list error = %v, want ErrBlocked", srv.URL, err)
	}
	if got := srv.conns.Load(); got != 0 {
		t.Errorf("server accepted %d connections while blocked, want 0", got)
	}

	resp, err := testClient(NewGuard(loopbackOnly), base).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s with loopback allowed: %v", srv.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %s, want 200 OK", resp.Status)
	}
	if got := tlsDials.Load(); got != 0 {
		t.Errorf("the base transport's DialTLSContext ran %d times, want 0", got)
	}
}

func TestTransportIgnoresProxy(t *testing.T) {
	proxy := startServer(t, false, replyOK)
	target := startServer(t, false, replyOK)

	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = http.ProxyURL(proxyURL)

	transport := NewGuard(loopbackOnly).Transport(base)
	if transport.Proxy != nil {
		t.Error("Transport(base).Proxy is not nil")
	}
	if base.Proxy == nil {
		t.Error("Transport(base) changed base.Proxy")
	}

	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	resp, err := client.Get(target.URL)
	if err != nil {
		t.Fatalf("GET %s: %v", target.URL, err)
	}
	resp.Body.Close()
	if got := proxy.requests.Load(); got != 0 {
		t.Errorf("proxy handled %d requests, want 0", got)
	}
	if got := target.requests.Load(); got != 1 {
		t.Errorf("target handled %d requests, want 1", got)
	}
}

func TestTransportDefaultBase(t *testing.T) {
	transport := NewGuard(nil).Transport(nil)
	if transport == http.DefaultTransport {
		t.Error("Transport(nil) returned http.DefaultTransport itself, want a copy")
	}
	if transport.Proxy != nil {
		t.Error("Transport(nil).Proxy is not nil")
	}
	if transport.DialContext == nil {
		t.Error("Transport(nil).DialContext is nil")
	}
	if http.DefaultTransport.(*http.Transport).Proxy == nil {
		t.Error("Transport(nil) cleared http.DefaultTransport.Proxy")
	}
}

// TestTransportRedirectBlocked follows a redirect from an allowed server on
// 127.0.0.1 to a server on 127.0.0.2, which the allow list does not contain.
func TestTransportRedirectBlocked(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	hidden := &countingServer{}
	hidden.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hidden.requests.Add(1)
	}))
	hidden.Listener.Close()
	hidden.Listener = listener
	hidden.Start()
	t.Cleanup(hidden.Close)

	public := startServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, hidden.URL+"/internal", http.StatusFound)
	})

	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	_, err = testClient(g, nil).Get(public.URL)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("GET %s redirected to %s: error = %v, want ErrBlocked", public.URL, hidden.URL, err)
	}
	if got := public.requests.Load(); got != 1 {
		t.Errorf("first server handled %d requests, want 1", got)
	}
	if got := hidden.requests.Load(); got != 0 {
		t.Errorf("redirect target handled %d requests, want 0", got)
	}
}

func TestDialLocalhost(t *testing.T) {
	addrs, err := hostsFileResolver().LookupNetIP(context.Background(), "ip", "localhost")
	if err != nil || len(addrs) == 0 {
		t.Skipf("localhost is not in the hosts file: %v", err)
	}
	srv := startServer(t, false, replyOK)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	address := net.JoinHostPort("localhost", port)

	t.Run("blocked", func(t *testing.T) {
		g := NewGuard(nil)
		g.resolver = hostsFileResolver()
		conn, err := g.DialContext(context.Background(), "tcp", address)
		if err == nil {
			conn.Close()
			t.Fatalf("DialContext(%s) connected, want ErrBlocked", address)
		}
		if !errors.Is(err, ErrBlocked) {
			t.Fatalf("DialContext(%s) error = %v, want ErrBlocked", address, err)
		}
		if got := srv.conns.Load(); got != 0 {
			t.Errorf("server accepted %d connections, want 0", got)
		}
	})

	t.Run("allowed", func(t *testing.T) {
		g := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
		g.resolver = hostsFileResolver()
		resp, err := testClient(g, nil).Get("http://" + address + "/")
		if err != nil {
			t.Fatalf("GET http://%s/ with loopback allowed: %v", address, err)
		}
		resp.Body.Close()
		if got := srv.requests.Load(); got != 1 {
			t.Errorf("server handled %d requests, want 1", got)
		}
	})
}

func TestDialUnixRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.sock")
	listener, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("cannot listen on a unix socket: %v", err)
	}
	defer listener.Close()

	conn, err := NewGuard(nil).DialContext(context.Background(), "unix", path)
	if err == nil {
		conn.Close()
		t.Fatalf("DialContext(unix, %s) connected, want an error", path)
	}
	if !strings.Contains(err.Error(), `network "unix" is not supported`) {
		t.Errorf("DialContext(unix) error = %v, want it to name the unsupported network", err)
	}
}
