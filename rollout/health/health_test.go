package health_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout/health"
)

const ms = time.Millisecond

func server(t *testing.T, tls bool, healthy *atomic.Bool) netip.AddrPort {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" || !healthy.Load() {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String())
}

func build(t *testing.T, hc fleet.HealthCheck) health.Check {
	t.Helper()
	c, err := health.NewRegistry().Build(hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGatePassesHTTPAndHTTPSAndTCP(t *testing.T) {
	var ok atomic.Bool
	ok.Store(true)
	for _, typ := range []string{"http", "https", "tcp"} {
		ap := server(t, typ == "https", &ok)
		c := build(t, fleet.HealthCheck{Type: typ, Port: int(ap.Port()), Path: "/ready", Expect: 200, Interval: 5 * ms,
			Timeout: time.Second, Healthy: 3, Deadline: 2 * time.Second, TLSSkipVerify: true})
		passes := atomic.Int32{}
		err := health.Gate(t.Context(), []health.Check{c}, []health.Target{{Name: "i-1", Addr: ap.Addr()}},
			func(_ health.Target, _ health.Check, streak int, err error) {
				if err == nil {
					passes.Add(1)
				}
			})
		if err != nil || passes.Load() != 3 {
			t.Errorf("%s: %v after %d passes, want healthy after 3", typ, err, passes.Load())
		}
	}
}

func TestGateFailureNamesCheckErrorAndConsoleTail(t *testing.T) {
	var ok atomic.Bool
	ap := server(t, false, &ok)
	console := filepath.Join(t.TempDir(), "console.log")
	var log strings.Builder
	for i := range 30 {
		log.WriteString("line " + string(rune('a'+i%26)) + "\n")
	}
	log.WriteString("vault: login with secret_id=abcd1234 failed\nfinal line\n")
	if err := os.WriteFile(console, []byte(log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := build(t, fleet.HealthCheck{Type: "http", Port: int(ap.Port()), Path: "/ready", Expect: 200, Interval: 5 * ms,
		Timeout: time.Second, Healthy: 1, Deadline: 100 * ms})
	start := time.Now()
	err := health.Gate(t.Context(), []health.Check{c}, []health.Target{{Name: "i-1", Addr: ap.Addr(), Console: console}}, nil)
	var f *health.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err = %v, want a Failure", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("gate took %s with a 100ms deadline", time.Since(start))
	}
	if f.Check != "http :"+strconv.Itoa(int(ap.Port()))+" GET /ready expect 200" || !strings.Contains(f.LastError, "503") || f.Target != "i-1" {
		t.Errorf("failure %+v", f)
	}
	lines := strings.Split(f.ConsoleTail, "\n")
	if len(lines) != health.ConsoleTailLines || lines[len(lines)-1] != "final line" || strings.Contains(f.ConsoleTail, "abcd1234") {
		t.Errorf("console tail (%d lines) %q", len(lines), f.ConsoleTail)
	}
	if !strings.Contains(f.Report(), "last error:") {
		t.Errorf("report %q", f.Report())
	}
}

func TestGateWaitsForConsecutiveSuccesses(t *testing.T) {
	var ok atomic.Bool
	ap := server(t, false, &ok)
	c := build(t, fleet.HealthCheck{Type: "http", Port: int(ap.Port()), Path: "/ready", Expect: 200, Interval: 5 * ms,
		Timeout: time.Second, Healthy: 2, Deadline: 2 * time.Second})
	go func() { time.Sleep(50 * ms); ok.Store(true) }()
	if err := health.Gate(t.Context(), []health.Check{c}, []health.Target{{Name: "i", Addr: ap.Addr()}}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestWatchFailsAfterThresholdAndPassesOtherwise(t *testing.T) {
	var ok atomic.Bool
	ok.Store(true)
	ap := server(t, false, &ok)
	c := build(t, fleet.HealthCheck{Type: "http", Port: int(ap.Port()), Path: "/ready", Expect: 200, Interval: 5 * ms,
		Timeout: time.Second, Healthy: 2, Deadline: time.Second})
	targets := []health.Target{{Name: "failover", Addr: ap.Addr()}}
	if err := health.Watch(t.Context(), []health.Check{c}, targets, 50*ms, nil); err != nil {
		t.Fatalf("healthy watch: %v", err)
	}
	go func() { time.Sleep(20 * ms); ok.Store(false) }()
	err := health.Watch(t.Context(), []health.Check{c}, targets, 5*time.Second, nil)
	var f *health.Failure
	if !errors.As(err, &f) || f.Target != "failover" {
		t.Fatalf("watch: %v, want a failure", err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers HTTP
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ap := netip.MustParseAddrPort(ln.Addr().String())
	c := build(t, fleet.HealthCheck{Type: "http", Port: int(ap.Port()), Path: "/", Expect: 200, Interval: 20 * ms,
		Timeout: 20 * ms, Healthy: 1, Deadline: 60 * ms})
	err = health.Gate(t.Context(), []health.Check{c}, []health.Target{{Name: "i", Addr: ap.Addr()}}, nil)
	var f *health.Failure
	if !errors.As(err, &f) || !strings.Contains(f.LastError, "no answer within 20ms") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := health.Gate(ctx, []health.Check{c}, []health.Target{{Name: "i", Addr: ap.Addr()}}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled gate: %v", err)
	}
}

func TestRegistryRefusesUnknownTypesAndTakesNewOnes(t *testing.T) {
	r := health.NewRegistry()
	if _, err := r.Build(fleet.HealthCheck{Type: "grpc", Port: 50051}, nil); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Fatalf("grpc: %v", err)
	}
	r.Register("grpc", func(fleet.HealthCheck, health.Dialer) (health.Prober, error) {
		return health.ProberFunc(func(context.Context, netip.AddrPort) error { return nil }), nil
	})
	if !r.Supports("grpc") {
		t.Fatal("registered type not supported")
	}
}

func TestRedact(t *testing.T) {
	in := "token=hvs.CAESIabc password: hunter2 s.abcdefghijklmnopqrstuvwx ok"
	out := health.Redact(in)
	for _, secret := range []string{"hvs.CAESIabc", "hunter2", "s.abcdefghijklmnopqrstuvwx"} {
		if strings.Contains(out, secret) {
			t.Errorf("Redact(%q) = %q keeps %q", in, out, secret)
		}
	}
}
