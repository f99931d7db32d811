package vultr

import (
	"fmt"
	"net/http"
	"time"

	"github.com/drover-dev/drover/plugins/internal/vultrapi"
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
	c, err := vultrapi.NewClient(url, key, o.client, o.retries, o.minWait)
	if err != nil {
		return nil, fmt.Errorf("vultr: %w", err)
	}
	return c, nil
}

// status is the HTTP status of a govultr answer, 0 when there was none.
func status(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}
