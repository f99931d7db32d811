package vultrlab

import "net/http"

// Fault is an error answer to requests of one route, given after the key is checked and before
// the route runs (so it has no effect). Faults answer in the order they were queued.
//
// What govultr makes of them: its retryablehttp client retries 429 and every 5xx but 501, 3
// retries by default, waiting what Retry-After says on a 429 or 503; other codes are final.
type Fault struct {
	// Route is a route's pattern, such as "POST /v2/instances"; empty matches every route.
	Route string
	// Status is the HTTP status; Message the error text (default: the status text).
	Status  int
	Message string
	// RetryAfter, in seconds, is sent as the Retry-After header when not zero.
	RetryAfter int
	// Times is how many requests get the fault (0 means 1); -1 means every matching one from now.
	Times int
}

// RateLimited is Vultr's answer to more than 30 requests a second.
func RateLimited(route string, times, retryAfter int) Fault {
	return Fault{Route: route, Status: http.StatusTooManyRequests, Message: "Rate limit reached - please try your request again later.", RetryAfter: retryAfter, Times: times}
}

// ServerError is a 500 of route.
func ServerError(route string, times int) Fault {
	return Fault{Route: route, Status: http.StatusInternalServerError, Message: "Internal server error.", Times: times}
}

type queuedFault struct {
	f    Fault
	left int
}

// faultAnswer is a fault's body and header, written by the route handler.
type faultAnswer struct {
	msg        string
	retryAfter int
}

// Fail queues f.
func (c *Cloud) Fail(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, &queuedFault{f: f, left: f.Times})
}

// RefuseLaunches makes the next len(reasons) instance creations fail with HTTP 400 and the given
// reason, as Vultr refuses a plan sold out in a region or an account over its instance limit;
// nothing is created.
func (c *Cloud) RefuseLaunches(reasons ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse = append(c.refuse, reasons...)
}

func (c *Cloud) nextFault(route string) (Fault, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.faults {
		if q.f.Route != "" && q.f.Route != route {
			continue
		}
		if q.left > 0 {
			q.left--
			if q.left == 0 {
				c.faults = append(c.faults[:i:i], c.faults[i+1:]...)
			}
		}
		return q.f, true
	}
	return Fault{}, false
}
