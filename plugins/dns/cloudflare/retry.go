package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	cfdns "github.com/cloudflare/cloudflare-go/v6/dns"

	"github.com/drover-dev/drover/plugins/internal/backoff"
)

// Retries happen in one layer only: drover's HTTP middleware (Retry.middleware). The client
// library's own retry loop is switched off with option.WithMaxRetries(0): its waits (2 s doubling
// to 30 s, ten tries by default in v6.10.0) cannot be tuned, and it retries 409s too.
//
// The middleware retries a request that got a 429 (waiting what Retry-After says), a 5xx or a
// transport error, with exponential backoff and jitter, up to a bounded number of attempts. It
// retries writes too: a write that failed with a 5xx was almost certainly not applied (a batch
// is one database transaction), and in the rare case where it was, the replay fails with "record
// already exists" or "record does not exist", which ReplaceSet answers by reading the set again
// and planning anew (ReplaceSet's own bounded loop, the only retry above this layer).

// Retry is the retry policy of the Cloudflare provider's HTTP requests.
type Retry struct {
	// Attempts is the number of tries of one request, the first included; 1 means no retries.
	Attempts int
	// Base is the backoff before the second try; it doubles each try, up to Max, and each wait is
	// a random duration between half of it and all of it.
	Base time.Duration
	// Max bounds a backoff.
	Max time.Duration
	// MaxRetryAfter is the longest Retry-After (of a 429, or a 5xx that has one) that is waited
	// for; a longer one (the API blocks a token for five minutes once it exceeds its rate limit)
	// fails the call at once.
	MaxRetryAfter time.Duration
}

// DefaultRetry is the policy New uses unless WithRetry replaces it: 6 attempts, 500 ms doubling
// to 30 s, Retry-After honoured up to 5 minutes.
func DefaultRetry() Retry {
	return Retry{Attempts: 6, Base: 500 * time.Millisecond, Max: 30 * time.Second, MaxRetryAfter: 5 * time.Minute}
}

func (r Retry) validate() error {
	if r.Attempts < 1 || r.Base <= 0 || r.Max < r.Base || r.MaxRetryAfter < 0 {
		return fmt.Errorf("dns/cloudflare: retry policy %+v: want Attempts >= 1 and 0 < Base <= Max", r)
	}
	return nil
}

// backoff returns the wait before try number attempt+1, attempt >= 1.
func (r Retry) backoff(attempt int) time.Duration { return backoff.Jittered(r.Base, r.Max, attempt) }

// callKey is the context key of the *call a request belongs to.
type callKey struct{}

// call records what the middleware saw of one API call, for the error message.
type call struct {
	attempts int
	status   int
	// note says why the middleware stopped retrying early, if it did.
	note string
}

func withCall(ctx context.Context) (context.Context, *call) {
	c := &call{}
	return context.WithValue(ctx, callKey{}, c), c
}

// middleware is the cloudflare-go middleware that retries one HTTP request.
func (r Retry) middleware(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	ctx := req.Context()
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		c = &call{}
	}
	for attempt := 1; ; attempt++ {
		try := req
		if attempt > 1 {
			try = req.Clone(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				try.Body = body
			}
		}
		c.attempts = attempt
		res, err := next(try)
		if ctx.Err() != nil {
			return res, err
		}
		c.status = 0
		if res != nil {
			c.status = res.StatusCode
		}
		wait, ok := r.retryable(res, err)
		if !ok {
			return res, err
		}
		if attempt >= r.Attempts {
			return res, err
		}
		if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
			c.note = "the request body cannot be sent again"
			return res, err
		}
		if wait > r.MaxRetryAfter {
			c.note = fmt.Sprintf("Retry-After %s is longer than the %s drover waits", wait, r.MaxRetryAfter)
			return res, err
		}
		if wait <= 0 {
			wait = r.backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			c.note = fmt.Sprintf("the next try (in %s) would come after the context deadline", wait.Round(time.Millisecond))
			return res, err
		}
		if res != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
			_ = res.Body.Close()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// retryable reports whether a request that got res or err is worth another try, and how long
// the server asked to wait (zero: use the backoff).
func (r Retry) retryable(res *http.Response, err error) (time.Duration, bool) {
	if err != nil {
		return 0, !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch {
	case res.StatusCode == http.StatusTooManyRequests:
		return retryAfter(res.Header.Get("Retry-After")), true
	case res.StatusCode >= 500:
		return retryAfter(res.Header.Get("Retry-After")), true
	}
	return 0, false
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

// APIError is a Cloudflare API call that failed: the HTTP status and the error codes and messages
// of the API's response envelope. Transport errors have Status 0. It never holds the token.
type APIError struct {
	// Op says what drover was doing: "listing records of www.example.com A".
	Op string
	// Status is the HTTP status of the last try; 0 when none answered.
	Status int
	// Errors are the envelope's errors, in order.
	Errors []ErrorDetail
	// Attempts is how many times the request was sent.
	Attempts int
	note     string
	err      error
}

// ErrorDetail is one entry of the envelope's "errors" list.
type ErrorDetail struct {
	Code    int64
	Message string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	} else {
		b.WriteString(e.err.Error())
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.note != "" {
		fmt.Fprintf(&b, " (%s)", e.note)
	}
	for i, d := range e.Errors {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%serror %d: %s", sep, d.Code, d.Message)
	}
	if e.Status != 0 && len(e.Errors) == 0 && e.err != nil {
		var apiErr *cfdns.Error
		if !errors.As(e.err, &apiErr) {
			// Not a JSON envelope (an HTML error page from a proxy, say): say what the library saw.
			fmt.Fprintf(&b, ": %v", e.err)
		}
	}
	return b.String()
}

// Unwrap returns the client library's error.
func (e *APIError) Unwrap() error { return e.err }

// HasCode reports whether the API answered with the error code.
func (e *APIError) HasCode(code int64) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// Cloudflare error codes drover reacts to.
const (
	codeRecordMissing   = 81044 // Record does not exist.
	codeRecordExists    = 81057 // The record already exists.
	codeIdenticalExists = 81058 // An identical record already exists.
)

// apiError turns the library's error for op into drover's: a context error stays itself (wrapped
// with op), anything else becomes an *APIError.
func apiError(op string, err error, c *call) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &APIError{Op: op, Attempts: c.attempts, Status: c.status, note: c.note, err: err}
	var apiErr *cfdns.Error
	if errors.As(err, &apiErr) {
		e.Status = apiErr.StatusCode
		for _, d := range apiErr.Errors {
			e.Errors = append(e.Errors, ErrorDetail{Code: d.Code, Message: d.Message})
		}
	}
	return e
}
