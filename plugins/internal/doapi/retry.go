package doapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/godo"
	"github.com/drover-dev/drover/plugins/internal/backoff"
)

// Retries happen in one layer only: drover's HTTP transport under the godo client (transport
// below). godo's own retries (go-retryablehttp, switched on by WithRetryAndBackoffs) stay off:
// they cannot bound a Retry-After nor see a call's deadline.
//
// The transport retries a request that got a 429 (waiting what Retry-After says or, without it,
// until RateLimit-Reset when RateLimit-Remaining is 0), a 5xx or a transport error (a refused
// connection, an attempt that timed out), with exponential backoff and jitter, up to a bounded
// number of attempts. Writes are retried too; each caller makes its writes safe to repeat (a droplet create finds
// the droplet of its token first, a DELETE of something already gone is success, an action on
// a droplet already in the state it asks for is waited out).
//
// When an answer says no requests remain (RateLimit-Remaining: 0), the next request waits until
// RateLimit-Reset instead of spending an attempt on a certain 429.

// Retry is the retry policy and the deadlines of DigitalOcean API requests.
type Retry struct {
	// Attempts is the number of tries of one request, the first included; 1 means no retries.
	Attempts int
	// Base is the backoff before the second try; it doubles each try, up to Max, and each wait is
	// a random duration between half of it and all of it.
	Base time.Duration
	// Max bounds a backoff.
	Max time.Duration
	// MaxRetryAfter is the longest wait the API may ask for (Retry-After, or RateLimit-Reset once
	// no requests remain); a longer one fails the call at once, saying so.
	MaxRetryAfter time.Duration
	// AttemptTimeout bounds one try, its answer's body included (the HTTP client's Timeout), so
	// an API that accepts connections and never answers costs at most this per attempt.
	AttemptTimeout time.Duration
	// CallTimeout bounds one API call, its retries and waits included, on top of the caller's
	// context.
	CallTimeout time.Duration
}

// DefaultRetry is the policy of the DigitalOcean providers unless a test replaces it: 6 attempts, 500 ms doubling to
// 20 s, waits the API asks for honoured up to a minute, 30 s an attempt, 3 minutes a call.
// DigitalOcean allows 250 requests a minute and 5,000 an hour per token.
func DefaultRetry() Retry {
	return Retry{Attempts: 6, Base: 500 * time.Millisecond, Max: 20 * time.Second, MaxRetryAfter: time.Minute,
		AttemptTimeout: 30 * time.Second, CallTimeout: 3 * time.Minute}
}

// Validate checks the policy.
func (r Retry) Validate() error {
	if r.Attempts < 1 || r.Base <= 0 || r.Max < r.Base || r.MaxRetryAfter < 0 || r.AttemptTimeout <= 0 || r.CallTimeout <= 0 {
		return fmt.Errorf("retry policy %+v: want Attempts >= 1, 0 < Base <= Max and positive timeouts", r)
	}
	return nil
}

// callKey is the context key of the *call a request belongs to.
type callKey struct{}

// call records what the transport saw of one API call, for the error message.
type call struct {
	attempts int
	status   int
	body     errorBody // the last error answer's body, if it was DigitalOcean's error JSON
	note     string    // why the transport stopped retrying early, if it did
}

// errorBody is DigitalOcean's error JSON: {"id": "not_found", "message": "...", "request_id": "..."}.
type errorBody struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func withCall(ctx context.Context) (context.Context, *call) {
	c := &call{}
	return context.WithValue(ctx, callKey{}, c), c
}

// Request is one API request made with a Client's godo services directly, for a caller that bounds
// several requests with one deadline of its own (Do bounds each call with CallTimeout): Track
// before the request, Err after it. It is not safe for concurrent use: one per request.
type Request struct{ c *call }

// Track returns the context to send one request with, and the Request that explains its failure.
func Track(ctx context.Context) (context.Context, *Request) {
	ctx, c := withCall(ctx)
	return ctx, &Request{c: c}
}

// Err turns the request's error into drover's (an *APIError naming op, the attempts and
// DigitalOcean's message, or a context error wrapped with op); nil stays nil.
func (r *Request) Err(op string, err error) error {
	if err == nil {
		return nil
	}
	return apiError(op, err, r.c)
}

// transport signs and retries the godo client's requests. It is safe for concurrent use.
type transport struct {
	retry Retry
	token string
	// once sends one attempt: the base transport, no redirects, AttemptTimeout.
	once *http.Client

	mu        sync.Mutex
	notBefore time.Time // RateLimit-Reset of an answer that said no requests remain
}

func newTransport(r Retry, token string, base http.RoundTripper) *transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{retry: r, token: token, once: &http.Client{
		Transport:     base,
		Timeout:       r.AttemptTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		c = &call{}
	}
	for attempt := 1; ; attempt++ {
		if err := t.waitQuota(ctx, c); err != nil {
			return nil, err
		}
		try := req.Clone(ctx)
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				c.note = "the request body cannot be sent again"
				return nil, errors.New("digitalocean: cannot resend the request body")
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			try.Body = body
		}
		try.Header.Set("Authorization", "Bearer "+t.token)
		c.attempts = attempt
		res, err := t.once.Do(try)
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // the godo client's own http.Client names the URL again
		}
		if ctx.Err() != nil {
			if res != nil {
				res.Body.Close()
			}
			return nil, ctx.Err()
		}
		c.status = 0
		if res != nil {
			c.status = res.StatusCode
			t.noteQuota(res.Header)
			if res.StatusCode >= 400 {
				keepErrorBody(res, c)
			}
		}
		wait, ok := t.retryable(res, err)
		if !ok || attempt >= t.retry.Attempts {
			return res, err
		}
		if wait > t.retry.MaxRetryAfter {
			c.note = fmt.Sprintf("the API asked to wait %s, longer than the %s drover waits", wait.Round(time.Second), t.retry.MaxRetryAfter)
			return res, err
		}
		if wait <= 0 {
			wait = backoff.Jittered(t.retry.Base, t.retry.Max, attempt)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			c.note = fmt.Sprintf("the next try (in %s) would come after the deadline", wait.Round(time.Millisecond))
			return res, err
		}
		if res != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
			_ = res.Body.Close()
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// retryable reports whether a request that got res or err is worth another try, and how long the
// API asked to wait (zero: use the backoff).
func (t *transport) retryable(res *http.Response, err error) (time.Duration, bool) {
	if err != nil {
		return 0, !errors.Is(err, context.Canceled)
	}
	switch {
	case res.StatusCode == http.StatusTooManyRequests:
		if d := retryAfter(res.Header.Get("Retry-After")); d > 0 {
			return d, true
		}
		if reset, ok := exhausted(res.Header); ok {
			return max(time.Until(reset), 0), true
		}
		return 0, true
	case res.StatusCode >= 500:
		return retryAfter(res.Header.Get("Retry-After")), true
	}
	return 0, false
}

// noteQuota remembers RateLimit-Reset when the answer says no requests remain. An answer with
// Retry-After (the burst limit's 429) says itself when to come back: its RateLimit-Reset, the
// expiry of the hour's oldest request, can be much later.
func (t *transport) noteQuota(h http.Header) {
	if h.Get("Retry-After") != "" {
		return
	}
	if reset, ok := exhausted(h); ok {
		t.mu.Lock()
		if reset.After(t.notBefore) {
			t.notBefore = reset
		}
		t.mu.Unlock()
	}
}

// waitQuota waits until the rate limit's reset when the last answers used up the quota.
func (t *transport) waitQuota(ctx context.Context, c *call) error {
	t.mu.Lock()
	wait := time.Until(t.notBefore)
	t.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	if wait > t.retry.MaxRetryAfter {
		c.note = fmt.Sprintf("no requests remain in the API's rate limit for %s (RateLimit-Reset), longer than the %s drover waits", wait.Round(time.Second), t.retry.MaxRetryAfter)
		return errors.New("rate limit exhausted")
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		c.note = fmt.Sprintf("no requests remain in the API's rate limit for %s (RateLimit-Reset), past the call's deadline", wait.Round(time.Second))
		return errors.New("rate limit exhausted")
	}
	return backoff.Sleep(ctx, wait)
}

// exhausted returns RateLimit-Reset when RateLimit-Remaining is 0.
func exhausted(h http.Header) (time.Time, bool) {
	if strings.TrimSpace(h.Get("RateLimit-Remaining")) != "0" {
		return time.Time{}, false
	}
	s, err := strconv.ParseInt(strings.TrimSpace(h.Get("RateLimit-Reset")), 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}, false
	}
	return time.Unix(s, 0), true
}

// retryAfter parses a Retry-After header: seconds or an HTTP date. Zero means absent or invalid.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// keepErrorBody reads an error answer's body into c (when it is DigitalOcean's error JSON) and
// puts it back for godo to read.
func keepErrorBody(res *http.Response, c *call) {
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(data))
	c.body = errorBody{}
	_ = json.Unmarshal(data, &c.body)
}

// APIError is a DigitalOcean API call that failed: the HTTP status and DigitalOcean's error id and
// message. Transport errors have Status 0. It never holds the token.
type APIError struct {
	// Op says what drover was doing: "creating droplet \"web-0\"".
	Op string
	// Status is the HTTP status of the last try; 0 when none answered.
	Status int
	// ID is DigitalOcean's error id, such as "not_found" or "too_many_requests"; empty when the
	// answer was not DigitalOcean's error JSON.
	ID        string
	Message   string
	RequestID string
	// Attempts is how many times the request was sent.
	Attempts int
	note     string
	err      error
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if e.ID != "" {
			fmt.Fprintf(&b, " %s", e.ID)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	} else {
		b.WriteString(e.err.Error())
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.note != "" {
		fmt.Fprintf(&b, " (%s)", e.note)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

// Unwrap returns the client library's error.
func (e *APIError) Unwrap() error { return e.err }

// apiError turns godo's error for op into drover's: a context error stays itself (wrapped with
// op), anything else becomes an *APIError.
func apiError(op string, err error, c *call) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if c.attempts > 1 {
			return fmt.Errorf("%s: %w (after %d attempts)", op, err, c.attempts)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &APIError{Op: op, Attempts: c.attempts, Status: c.status, note: c.note, err: err,
		ID: c.body.ID, Message: c.body.Message, RequestID: c.body.RequestID}
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		e.Status = er.Response.StatusCode
		if e.Message == "" {
			e.Message = strings.TrimSpace(er.Message) // not JSON: an HTML page from a proxy, say
			if len(e.Message) > 200 {
				e.Message = e.Message[:200] + "..."
			}
		}
		if e.RequestID == "" {
			e.RequestID = er.RequestID
		}
	} else if e.Status != 0 && c.note == "" {
		e.Status = 0 // the answer was fine; what failed came after it (decoding, say)
	}
	return e
}
