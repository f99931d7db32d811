package vultr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vultr/govultr/v3"
)

// Option adjusts a Provider; tests use them to point it at a fake and poll faster.
type Option func(*options)

type options struct {
	client   *http.Client
	poll     time.Duration
	retries  int
	minWait  time.Duration
	pageSize int
	store    ObjectStore
}

func defaultOptions() options {
	return options{client: &http.Client{Timeout: time.Minute}, poll: 3 * time.Second, retries: 4, minWait: 500 * time.Millisecond, pageSize: 100}
}

// WithHTTPClient sets the HTTP client of every request (its transport gets the API key added).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithPollInterval sets the longest wait between two polls of a state change (default 3 s).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithRetry sets how many times a request answered 429 or 5xx is retried, and the shortest wait
// between tries when the answer has no Retry-After (govultr's retryablehttp client).
func WithRetry(retries int, minWait time.Duration) Option {
	return func(o *options) { o.retries, o.minWait = retries, minWait }
}

// WithObjectStore sets where Publish uploads disks (Vultr Object Storage).
func WithObjectStore(s ObjectStore) Option { return func(o *options) { o.store = s } }

// WithPageSize sets how many items a list request asks for (per_page, default 100).
func WithPageSize(n int) Option { return func(o *options) { o.pageSize = n } }

// newClient is a govultr client of the API at url with key.
func newClient(url, key string, o options) (*govultr.Client, error) {
	hc := *o.client
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = bearer{key: key, next: base}
	c := govultr.NewClient(&hc)
	if err := c.SetBaseURL(url); err != nil {
		return nil, fmt.Errorf("vultr: API URL %q: %w", url, err)
	}
	c.SetUserAgent("drover")
	c.SetRetryLimit(o.retries)
	c.SetRateLimit(o.minWait * 3 / 2) // govultr waits between 2/3 of this and this
	return c, nil
}

// bearer adds the API key to every request.
type bearer struct {
	key  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.next.RoundTrip(r)
}

// status is the HTTP status of a govultr answer, 0 when there was none.
func status(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// ctxErr returns an error wrapping ctx's when ctx is done, so a request cut short by the caller
// reads as such rather than as govultr's "gave up after N attempts".
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// sleep waits d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// apiStatus is the status of a Vultr error answer, which govultr hands back as an error whose
// text is the body ({"error": "...", "status": 404}); 0 when err is not one.
func apiStatus(err error) int {
	if err == nil {
		return 0
	}
	var body struct {
		Status int `json:"status"`
	}
	if json.Unmarshal([]byte(err.Error()), &body) != nil {
		return 0
	}
	return body.Status
}
