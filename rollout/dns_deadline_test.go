package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/dns"
	dnsmem "github.com/drover-dev/drover/plugins/dns/memory"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/rollout"
)

// apiDNS is a dns provider of a hosted API, as cloudflare's and route53's are: every call is an
// HTTP request to the API, made with a client without a timeout of its own (only the context
// bounds it), and the records live behind the API (an in-memory zone here).
type apiDNS struct {
	zone   *dnsmem.Zone
	url    atomic.Pointer[string]
	client *http.Client
}

func (a *apiDNS) ask(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *a.url.Load(), nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("dns/api: %w", err)
	}
	resp.Body.Close()
	return nil
}

func (a *apiDNS) Zone() string { return a.zone.Zone() }

func (a *apiDNS) Set(ctx context.Context, name, typ string) (dns.RecordSet, error) {
	if err := a.ask(ctx); err != nil {
		return dns.RecordSet{}, err
	}
	return a.zone.Set(ctx, name, typ)
}

func (a *apiDNS) ReplaceSet(ctx context.Context, want dns.RecordSet, prev *dns.RecordSet) error {
	if err := a.ask(ctx); err != nil {
		return err
	}
	return a.zone.ReplaceSet(ctx, want, prev)
}

// blackHole is a TCP listener that accepts every connection and never answers, as a stalled API
// behind a load balancer does. It closes its connections when the test ends.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

// TestPromoteAgainstAStalledDNSAPI: the DNS API accepts connections and never answers. The promote
// fails within its deadline (not after minutes, not never), the rollout record says why, the role's
// lock is free, and once the API answers again the same promote converges.
func TestPromoteAgainstAStalledDNSAPI(t *testing.T) {
	l := newLab(t, webRole(func(d *fleet.Deploy) {
		d.Cutover = fleet.Cutover{Type: "dns", DNS: "home", Name: "www", TTL: 1}
	}))
	api := &apiDNS{zone: dnsmem.New("lab.example."), client: &http.Client{}}
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer healthy.Close()
	api.url.Store(&healthy.URL)
	const wait = time.Second // DNSWait: also the bound of each provider call
	c := l.controller(func(o *rollout.Options) {
		o.DNSWait = wait
		o.DNS = func(_ context.Context, name string) (dns.Provider, error) {
			if name != "home" {
				return nil, fmt.Errorf("no dns %q", name)
			}
			return api, nil
		}
	})
	l.build("web")
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)

	stalled := blackHole(t)
	api.url.Store(&stalled)
	start := time.Now()
	rec, err = c.Promote(t.Context(), "web")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("promote against a stalled API succeeded: %+v", rec)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("promote error %v does not say the call ran out of time", err)
	}
	if took > 10*wait {
		t.Errorf("promote gave up after %v, want within a few times the %v call deadline", took, wait)
	}
	hist, herr := c.History(t.Context(), "web")
	if herr != nil || len(hist) == 0 {
		t.Fatalf("history: %v %v", hist, herr)
	}
	last := hist[0]
	for _, h := range hist {
		if h.Seq > last.Seq {
			last = h
		}
	}
	if last.State.Terminal() {
		t.Errorf("the stalled promote ended the rollout (%s); it must stay resumable", last.State)
	}
	if n := len(last.Errors); n == 0 || !strings.Contains(last.Errors[n-1].Message, "deadline exceeded") || !strings.Contains(last.Errors[n-1].Message, "www.lab.example.") {
		t.Errorf("the record does not say why the promote failed: %+v", last.Errors)
	}
	if lease, err := l.lease("web"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the role's lock after the failed promote: %+v, %v; want it released", lease, err)
	}

	// The API recovers: the same command converges.
	api.url.Store(&healthy.URL)
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	got, err := api.zone.Set(t.Context(), "www.lab.example.", "A")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ins := range l.running("web")[rec.Image.Identity] {
		want = append(want, ins.Address.String())
	}
	slices.Sort(want)
	if !slices.Equal(got.Values, want) {
		t.Errorf("www serves %v after the rerun, want green %v", got.Values, want)
	}
}
