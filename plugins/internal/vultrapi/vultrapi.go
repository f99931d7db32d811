// Package vultrapi is what the Vultr providers (compute and ip) share of the Vultr API: the govultr
// client with the API key and drover's retry settings, and the reading of Vultr's error answers.
package vultrapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vultr/govultr/v3"
)

// NewClient is a govultr client of the API at url with key, over hc (its transport gets the key
// added). A request answered 429 or 5xx is retried retries times, waiting at least minWait when
// the answer has no Retry-After (govultr's retryablehttp client). It makes no request and is safe
// for concurrent use.
func NewClient(url, key string, hc *http.Client, retries int, minWait time.Duration) (*govultr.Client, error) {
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = bearer{key: key, next: base}
	client := govultr.NewClient(&c)
	if err := client.SetBaseURL(url); err != nil {
		return nil, fmt.Errorf("API URL %q: %w", url, err)
	}
	client.SetUserAgent("drover")
	client.SetRetryLimit(retries)
	client.SetRateLimit(minWait * 3 / 2) // govultr waits between 2/3 of this and this
	return client, nil
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

// Error is Vultr's error answer, which govultr hands back as an error whose text is the body
// ({"error": "...", "status": 404}): its status and message, 0 and "" when err is not one.
func Error(err error) (status int, msg string) {
	if err == nil {
		return 0, ""
	}
	var body struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if json.Unmarshal([]byte(err.Error()), &body) != nil {
		return 0, ""
	}
	return body.Status, body.Error
}

// Status is the status of a Vultr error answer, 0 when err is not one.
func Status(err error) int { s, _ := Error(err); return s }

// CtxErr returns an error wrapping ctx's when ctx is done, so a request cut short by the caller
// reads as such rather than as govultr's "gave up after N attempts".
func CtxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
