package digitalocean

import "github.com/drover-dev/drover/plugins/internal/doapi"

// Retry is the retry policy and the deadlines of the provider's requests: the DigitalOcean
// providers' shared policy (plugins/internal/doapi), whose transport retries 429 (honouring
// Retry-After and the rate-limit headers), 5xx and broken connections. Writes are retried too: a
// record PUT with the same body twice is the same record, a DELETE of a record already gone is
// success to ReplaceSet, and a POST that was in fact applied leaves a duplicate record that
// ReplaceSet's next read sees and deletes. CallTimeout bounds one call of New, Set or ReplaceSet,
// its retries and waits included.
type Retry = doapi.Retry

// APIError is a DigitalOcean API call that failed: what drover was doing, the HTTP status, the
// attempts and DigitalOcean's own message.
type APIError = doapi.APIError

// DefaultRetry is the policy New uses unless WithRetry replaces it.
func DefaultRetry() Retry { return doapi.DefaultRetry() }
