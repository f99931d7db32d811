package health_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout/health"
)

// TestHTTPCheckPathCannotChangeTheHost: a path that would make a concatenated URL name another
// host is refused when the check is built; a path with a query reaches the instance whole.
func TestHTTPCheckPathCannotChangeTheHost(t *testing.T) {
	for _, path := range []string{"@169.254.169.254/latest/meta-data", "//evil.example/", "http://evil.example/", "healthz"} {
		if _, err := health.NewRegistry().Build(fleet.HealthCheck{Type: "http", Port: 80, Path: path}, nil); err == nil {
			t.Errorf("path %q accepted", path)
		}
	}
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Store(r.URL.RequestURI()) }))
	defer srv.Close()
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	c := build(t, fleet.HealthCheck{Type: "http", Port: int(ap.Port()), Path: "/ready%2Fnow?full=1&x=a+b", Expect: 200,
		Interval: 5 * ms, Timeout: time.Second, Healthy: 1, Deadline: time.Second})
	if err := health.Gate(t.Context(), []health.Check{c}, []health.Target{{Name: "i-1", Addr: ap.Addr()}}, nil); err != nil {
		t.Fatal(err)
	}
	if uri, _ := got.Load().(string); !strings.HasPrefix(uri, "/ready%2Fnow?full=1&x=a+b") {
		t.Errorf("the instance was asked %q", uri)
	}
}
