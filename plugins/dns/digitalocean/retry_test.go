package digitalocean_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns/digitalocean"
	"github.com/drover-dev/drover/plugins/dns/digitalocean/internal/dofake"
)

func statuses(reqs []dofake.Request) string {
	var out []string
	for _, q := range reqs {
		out = append(out, fmt.Sprint(q.Status))
	}
	return strings.Join(out, " ")
}

func TestRetryAfterHonoured(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(dofake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", ID: "too_many_requests", Message: "API Rate limit exceeded.", Times: 1})
	start := time.Now()
	if _, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("Set returned after %v, want at least the 1 s of Retry-After", d)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-2:]
	if last[0].Status != http.StatusTooManyRequests || last[1].Status != http.StatusOK {
		t.Fatalf("last two answers %d, %d: want 429 then 200", last[0].Status, last[1].Status)
	}
	if gap := last[1].Time.Sub(last[0].Time); gap < time.Second {
		t.Fatalf("retried %v after the 429, want at least 1 s", gap)
	}
}

// The burst limit's 429 says when to come back (Retry-After); the hourly quota's RateLimit-Reset
// in the same answer, much later, does not hold the retry.
func TestRetryAfterWinsOverRateLimitReset(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(dofake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", RateLimitReset: time.Now().Add(time.Hour), Times: 1})
	start := time.Now()
	if _, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil {
		t.Fatalf("Set after a burst 429: %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 3*time.Second {
		t.Fatalf("Set took %v, want about the 1 s of Retry-After", d)
	}
	if _, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil {
		t.Fatalf("the next call: %v", err)
	}
}

// A 429 without Retry-After (as the API answered before 2023) waits for RateLimit-Reset.
func TestRateLimitResetHonoured(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	reset := time.Now().Add(1500 * time.Millisecond)
	s.LimitRequests(0, reset)
	n := len(s.Requests())
	if _, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()[n:]
	if got := statuses(reqs); got != "429 200" {
		t.Fatalf("answers %s, want 429 200: one wait until RateLimit-Reset, not a burst of retries", got)
	}
	if reqs[1].Time.Before(reset) {
		t.Fatalf("retried at %v, before RateLimit-Reset %v", reqs[1].Time, reset)
	}
}

// An answer that says no requests remain holds the next request until RateLimit-Reset, instead of
// spending it on a certain 429.
func TestRateLimitExhaustedWaitsBeforeSending(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	reset := time.Now().Add(1500 * time.Millisecond)
	s.LimitRequests(1, reset)
	n := len(s.Requests())
	if _, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()[n:]
	if got := statuses(reqs); got != "200 200" {
		t.Fatalf("answers %s, want 200 200 (no 429)", got)
	}
	if reqs[1].Time.Before(reset) {
		t.Fatalf("the second request went at %v, before RateLimit-Reset %v", reqs[1].Time, reset)
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(dofake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "300", ID: "too_many_requests", Message: "API Rate limit exceeded.", Times: 1})
	start := time.Now()
	_, err := p.Set(t.Context(), "www.lab.example.", "A")
	if err == nil || !strings.Contains(err.Error(), "HTTP 429 too_many_requests: API Rate limit exceeded.") || !strings.Contains(err.Error(), "asked to wait 5m0s") {
		t.Fatalf("Set after a 429 asking for 5 minutes: %v, want an HTTP 429 error naming the wait", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v, want at once", d)
	}
}

func TestRetryAfterBeyondDeadline(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(dofake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3", Times: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := p.Set(ctx, "www.lab.example.", "A")
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("Set with a deadline before Retry-After: %v, want an error saying so", err)
	}
}

func TestServerErrorsRetried(t *testing.T) {
	for _, html := range []bool{false, true} {
		t.Run(fmt.Sprintf("html=%v", html), func(t *testing.T) {
			s := newFake(t)
			p := newProvider(t, s)
			n := len(s.Requests())
			s.Fail(dofake.Fault{Status: http.StatusBadGateway, HTML: html, Times: 2, Method: http.MethodPost})
			s.Fail(dofake.Fault{Status: http.StatusInternalServerError, ID: "server_error", Message: "Unexpected server-side error", Times: 1})
			want := set(60, "192.0.2.1")
			if err := p.ReplaceSet(t.Context(), want, nil); err != nil {
				t.Fatal(err)
			}
			got, err := p.Set(t.Context(), want.Name, want.Type)
			if err != nil || !got.Equal(want) {
				t.Fatalf("Set = %v, %v; want %v", got, err, want)
			}
			// The list (500, 200), the create (502, 502, 201), the check (200), the Set (200).
			if got := statuses(s.Requests()[n:]); got != "500 200 502 502 201 200 200" {
				t.Fatalf("answers %s, want 500 200 502 502 201 200 200", got)
			}
			if r := records(s, "www", "A"); len(r) != 1 {
				t.Fatalf("records %v, want one", r)
			}
		})
	}
}

func TestServerErrorsForever(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(dofake.Fault{Status: http.StatusServiceUnavailable, ID: "service_unavailable", Message: "Service is temporarily unavailable", Times: -1})
	n := len(s.Requests())
	err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1"), nil)
	var ae *digitalocean.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("ReplaceSet against a failing API: %v, want an *APIError", err)
	}
	if ae.Status != http.StatusServiceUnavailable || ae.Attempts != 4 || ae.ID != "service_unavailable" {
		t.Fatalf("error %+v: want status 503, 4 attempts, id service_unavailable", ae)
	}
	want := "dns/digitalocean: listing records of www.lab.example. A: HTTP 503 service_unavailable: Service is temporarily unavailable (after 4 attempts)"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if got := len(s.Requests()) - n; got != 4 {
		t.Fatalf("%d requests, want 4 (the retry policy's attempts)", got)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", err, ae), token) {
		t.Fatal("the error shows the token")
	}
}

func TestHTMLErrorShown(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(dofake.Fault{Status: http.StatusForbidden, HTML: true, Times: 1})
	_, err := p.Set(t.Context(), "www.lab.example.", "A")
	if err == nil || !strings.Contains(err.Error(), "HTTP 403: <html>") {
		t.Fatalf("Set answered by a proxy's HTML page: %v, want the status and the start of the page", err)
	}
}

// blackHole accepts TCP connections and never answers; it stops, closing them, when the test ends.
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
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
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

func TestBlackHoledAPIFailsWithinItsDeadline(t *testing.T) {
	r := fastRetry()
	r.Attempts, r.AttemptTimeout, r.CallTimeout = 100, 200*time.Millisecond, time.Second
	cfg := &digitalocean.Config{Zone: domain, APIURL: blackHole(t), Token: token}
	start := time.Now()
	_, err := digitalocean.New(t.Context(), cfg, digitalocean.WithRetry(r))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New against an API that never answers: %v, want the call's deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("New gave up after %v, want about the 1 s call timeout", d)
	}
	if !strings.Contains(err.Error(), "attempts)") {
		t.Errorf("error %q does not say how many attempts timed out", err)
	}
}

// hangTransport stops answering once hang is set: a request waits until its context ends.
type hangTransport struct{ hang atomic.Bool }

func (h *hangTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if h.hang.Load() {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestAPIGoneSilentFailsWithinTheCallTimeout(t *testing.T) {
	s := newFake(t)
	r := fastRetry()
	r.AttemptTimeout, r.CallTimeout = 150*time.Millisecond, 800*time.Millisecond
	ht := &hangTransport{}
	p := newProvider(t, s, digitalocean.WithRetry(r), digitalocean.WithTransport(ht))
	ht.hang.Store(true)
	for name, call := range map[string]func(ctx context.Context) error{
		"Set":        func(ctx context.Context) error { _, err := p.Set(ctx, "www.lab.example.", "A"); return err },
		"ReplaceSet": func(ctx context.Context) error { return p.ReplaceSet(ctx, set(60, "192.0.2.1"), nil) },
	} {
		start := time.Now()
		err := call(t.Context()) // no deadline of the caller's: the provider's own bounds the call
		d := time.Since(start)
		if err == nil || d > 1500*time.Millisecond {
			t.Fatalf("%s against a silent API: %v after %v, want an error within the 800 ms call timeout", name, err, d)
		}
		// 4 attempts of 150 ms fit in the call's 800 ms: the attempts run out first.
		if !strings.Contains(err.Error(), "(after 4 attempts)") {
			t.Errorf("%s: error %q, want the attempts named", name, err)
		}
	}
}
