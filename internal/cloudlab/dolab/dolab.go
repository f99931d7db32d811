// Package dolab is a fake of the DigitalOcean API v2 parts drover's digitalocean providers call,
// for tests, answering the real godo client pointed at its loopback URL: droplets (create with an
// image id, size, region, vpc_uuid, tags and user_data; list, by tag_name too; get; delete),
// droplet actions (power_off, power_on), actions (GET /v2/actions/{id}), custom images imported
// from a URL (POST /v2/images, listed by tag_name; status NEW, then available, or deleted with an
// error_message when the URL cannot be read or holds no disk), reserved IPs (create, get, list,
// delete, and the assign and unassign actions), tags (create, get, delete) and a droplet metadata
// service per droplet (metadata.go).
//
// It is written from the API reference: JSON bodies under the resource's root key, pagination
// with page and per_page (default 20, at most 200) and links.pages (first, prev, next, last as
// absolute URLs, left out where they make no sense) with meta.total, the RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset headers on every answer, errors as {"id", "message"}
// JSON (401 "unauthorized" without the bearer token, 404 "not_found", 422
// "unprocessable_entity"), and faults queued by tests (429 with Retry-After, 5xx) answered before
// a request has any effect.
//
// Each droplet gets a public address that is a loopback address of Options.AddressRange, where
// the Hypervisor (when set) forwards Options.Ports into the guest; a reserved IP is another
// loopback address on which the fake proxies Options.Ports to the droplet it is assigned to at
// the moment of each new connection (reservedips.go). Inside the guest the droplet's address is
// the one its metadata gives (169.254.20.x on the lab's link-local network, GuestAddress), which
// the image must configure itself, as on DigitalOcean, which runs no DHCP for droplets.
//
// What it leaves out: one region for droplets (images may be imported to others, which droplets
// then cannot use); no sizes, VPCs, SSH keys, firewalls, projects or backups as resources (their
// slugs and IDs are taken as given); no IPv6 or private networking; the only droplet actions are
// power_off and power_on; actions complete after Options.ActionPolls GETs, not after a time.
package dolab

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultToken and DefaultRegion are what a Cloud accepts and serves unless Options say otherwise.
const (
	DefaultToken  = "dop_v1_dolab0000000000000000000000000000000000000000000000000000000000"
	DefaultRegion = "ams3"
)

// Options configure a Cloud. The zero value is usable.
type Options struct {
	// Token is the API token the fake accepts (DefaultToken).
	Token string
	// Region is where droplets are created and reserved IPs live (DefaultRegion).
	Region string
	// AddressRange is where droplets' public addresses and reserved IPs come from: loopback
	// addresses handed out in order; a random /24 of 127.2.0.0/16 by default.
	AddressRange netip.Prefix
	// Ports are the TCP ports a reserved IP forwards, and a Hypervisor forwards from a droplet's
	// public address into the guest.
	Ports []int
	// Hypervisor, when set, boots droplets from their image's disk; nil means droplets are API
	// state only.
	Hypervisor Hypervisor
	// Routes are passed to the Hypervisor: guest-visible addresses of services "in the VPC".
	Routes map[netip.AddrPort]netip.AddrPort
	// MaxPerPage caps per_page below the API's 200, so listings take several pages.
	MaxPerPage int
	// NewPolls is how many GETs (of the droplet or a listing holding it) see a droplet "new"
	// before it is "active", without a Hypervisor.
	NewPolls int
	// ActionPolls is how many GETs see an action "in-progress" before it is "completed".
	ActionPolls int
	// Dir holds imported images and droplet disks (a t.TempDir() by default).
	Dir string
	// Download fetches an image's URL (http.DefaultClient by default).
	Download *http.Client
}

// Cloud is the fake. Its methods are safe for concurrent use.
type Cloud struct {
	t    testing.TB
	opts Options
	srv  *httptest.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	nextID       int
	nextAddr     netip.Addr
	nextNIC      int
	droplets     map[int]*droplet
	images       map[int]*image
	actions      map[int]*action
	ips          map[netip.Addr]*reservedIP
	tags         map[string]bool
	breakCreates int // creates still to fail (BreakCreates)
	volumes      map[string]*volume
	snapshots    map[string]*volumeSnapshot
	faults       []*queuedFault
	log          []Request
	received     int64 // image bytes downloaded
	// lastConsole is the console of each droplet whose machine was stopped, as it was then: what
	// a test shows of an instance drover destroyed after it failed its health check.
	lastConsole map[int][]byte
}

// New starts the fake on loopback; it, the reserved IPs' proxies and every machine the
// Hypervisor booted are stopped when the test ends.
func New(t testing.TB, opts Options) *Cloud {
	t.Helper()
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if !opts.AddressRange.IsValid() {
		b := make([]byte, 1)
		_, _ = rand.Read(b)
		opts.AddressRange = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 2, b[0], 0}), 24)
	}
	if !opts.AddressRange.Addr().IsLoopback() {
		t.Fatalf("dolab: AddressRange %s is not loopback", opts.AddressRange)
	}
	if opts.MaxPerPage <= 0 || opts.MaxPerPage > 200 {
		opts.MaxPerPage = 200
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Download == nil {
		opts.Download = http.DefaultClient
	}
	c := &Cloud{t: t, opts: opts, nextID: 3164444, nextAddr: opts.AddressRange.Masked().Addr().Next(), nextNIC: 10,
		droplets: map[int]*droplet{}, images: map[int]*image{}, actions: map[int]*action{},
		ips: map[netip.Addr]*reservedIP{}, tags: map[string]bool{},
		volumes: map[string]*volume{}, snapshots: map[string]*volumeSnapshot{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.close)
	return c
}

// URL is the API's base URL to give the client: "http://127.0.0.1:PORT/".
func (c *Cloud) URL() string { return c.srv.URL + "/" }

// Token is the API token the fake accepts.
func (c *Cloud) Token() string { return c.opts.Token }

// Region is where droplets are created.
func (c *Cloud) Region() string { return c.opts.Region }

// BytesDownloaded is what image imports have read from their URLs so far.
func (c *Cloud) BytesDownloaded() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received
}

func (c *Cloud) close() {
	c.srv.Close()
	c.cancel()
	c.mu.Lock()
	for _, ip := range c.ips {
		ip.proxy.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	var up []*droplet
	for _, d := range c.droplets {
		if d.machine != nil {
			up = append(up, d)
		}
	}
	c.mu.Unlock()
	for _, d := range up {
		if err := d.machine.Stop(); err != nil {
			c.t.Errorf("dolab: stopping droplet %d at the end of the test: %v", d.ID, err)
		}
	}
}

// Request is one request the fake received, for tests to assert on.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Query  url.Values
	Body   []byte
	Status int
}

// Requests returns the requests received so far, in order.
func (c *Cloud) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// Fault is an error answer to requests, before they have any effect. Faults answer in the order
// they were queued.
type Fault struct {
	// Method and Path restrict the fault to matching requests (Path is a prefix of the URL path,
	// "/v2/droplets"); empty matches every request.
	Method, Path string
	// Status is the HTTP status: 429, 500, 503...
	Status int
	// RetryAfter is the Retry-After header, if not empty.
	RetryAfter string
	// Reset, when not zero, answers RateLimit-Remaining: 0 and this RateLimit-Reset: the hour's
	// quota used up, which the API answers with a 429 without Retry-After.
	Reset time.Time
	// Times is how many requests get the fault (1 when 0); -1 means every one from now on.
	Times int
}

type queuedFault struct {
	f    Fault
	left int
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

// nextFault returns the first queued fault matching the request; c.mu is held.
func (c *Cloud) nextFault(method, path string) (Fault, bool) {
	for i, q := range c.faults {
		if q.f.Method != "" && q.f.Method != method || !strings.HasPrefix(path, q.f.Path) {
			continue
		}
		if q.left > 0 {
			q.left--
			if q.left == 0 {
				c.faults = slices.Delete(c.faults, i, i+1)
			}
		}
		return q.f, true
	}
	return Fault{}, false
}

// answer is what a handler decided: a status and a JSON body (nil: none).
type answer struct {
	status int
	body   any
}

func apiError(status int, id, msg string) answer {
	return answer{status, map[string]string{"id": id, "message": msg, "request_id": "dolab-" + strconv.Itoa(status)}}
}

func notFound() answer {
	return apiError(http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
}

func unprocessable(format string, args ...any) answer {
	return apiError(http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf(format, args...))
}

// rateLimit is the hourly request limit the fake reports.
const rateLimit = 5000

func (c *Cloud) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	c.mu.Lock()
	if r.Context().Err() != nil {
		// The client hung up before the fake took its request: it is not applied, as if it
		// had never reached the API. Applying it now would create a droplet after the
		// client's retry had looked for one, which no client can adopt without an
		// idempotency key (DigitalOcean has none). A request taken before the client gives
		// up is applied and its answer lost, the case a retry must adopt.
		c.mu.Unlock()
		return
	}
	req := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(rateLimit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(rateLimit-len(c.log)-1, 0)))
	h.Set("RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
	var a answer
	if f, ok := c.nextFault(r.Method, r.URL.Path); ok {
		if f.RetryAfter != "" {
			h.Set("Retry-After", f.RetryAfter)
		}
		if !f.Reset.IsZero() {
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", strconv.FormatInt(f.Reset.Unix(), 10))
		}
		id := strings.ToLower(strings.ReplaceAll(http.StatusText(f.Status), " ", "_"))
		a = apiError(f.Status, id, http.StatusText(f.Status))
	} else if r.Header.Get("Authorization") != "Bearer "+c.opts.Token {
		a = apiError(http.StatusUnauthorized, "unauthorized", "Unable to authenticate you")
	} else if r.Method != http.MethodGet && r.Method != http.MethodDelete && len(body) > 0 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		a = apiError(http.StatusBadRequest, "bad_request", "Content-Type must be application/json")
	} else {
		a = c.route(r, body)
	}
	req.Status = a.status
	c.log = append(c.log, req)
	c.mu.Unlock()
	if a.body == nil {
		w.WriteHeader(a.status)
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

// route dispatches a request; c.mu is held.
func (c *Cloud) route(r *http.Request, body []byte) answer {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v2/"), "/"), "/")
	if !strings.HasPrefix(r.URL.Path, "/v2/") || len(parts) == 0 {
		return c.bad("unexpected path %s %s", r.Method, r.URL.Path)
	}
	m := r.Method
	switch {
	case parts[0] == "droplets":
		return c.routeDroplets(r, parts[1:], body)
	case parts[0] == "images":
		return c.routeImages(r, parts[1:], body)
	case parts[0] == "reserved_ips":
		return c.routeReservedIPs(r, parts[1:], body)
	case parts[0] == "tags":
		return c.routeTags(r, parts[1:], body)
	case parts[0] == "volumes":
		return c.routeVolumes(r, parts[1:], body)
	case parts[0] == "snapshots":
		return c.routeSnapshots(r, parts[1:])
	case parts[0] == "actions" && len(parts) == 2 && m == http.MethodGet:
		id, err := strconv.Atoi(parts[1])
		if err != nil {
			return notFound()
		}
		return c.getAction(id)
	}
	return c.bad("unexpected request %s %s", r.Method, r.URL.Path)
}

// bad fails the test: a correct client does not send such a request.
func (c *Cloud) bad(format string, args ...any) answer {
	msg := fmt.Sprintf(format, args...)
	c.t.Errorf("dolab: %s", msg)
	return apiError(http.StatusBadRequest, "bad_request", msg)
}

// decode reads a JSON body into v.
func decode(body []byte, v any) error { return json.Unmarshal(body, v) }

// page answers a listing: the items of the page the query asks for under key, with links.pages
// and meta.total.
func page[T any](c *Cloud, r *http.Request, key string, items []T) answer {
	q := r.URL.Query()
	per, pg := 20, 1
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return unprocessable("per_page %q is invalid", v)
		}
		per = min(n, 200)
	}
	per = min(per, c.opts.MaxPerPage)
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return unprocessable("page %q is invalid", v)
		}
		pg = n
	}
	last := max((len(items)+per-1)/per, 1)
	from, to := min((pg-1)*per, len(items)), min(pg*per, len(items))
	link := func(n int) string {
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		v := u.Query()
		v.Set("page", strconv.Itoa(n))
		v.Set("per_page", strconv.Itoa(per))
		u.RawQuery = v.Encode()
		return u.String()
	}
	pages := map[string]string{}
	if pg > 1 {
		pages["first"], pages["prev"] = link(1), link(pg-1)
	}
	if pg < last {
		pages["next"], pages["last"] = link(pg+1), link(last)
	}
	return answer{http.StatusOK, map[string]any{key: items[from:to], "links": map[string]any{"pages": pages}, "meta": map[string]int{"total": len(items)}}}
}

// newID hands out the next numeric ID; c.mu is held.
func (c *Cloud) newID() int {
	c.nextID++
	return c.nextID
}

// allocAddress hands out the next loopback address of the range; c.mu is held.
func (c *Cloud) allocAddress() (netip.Addr, error) {
	a := c.nextAddr
	if !c.opts.AddressRange.Contains(a) {
		return netip.Addr{}, fmt.Errorf("dolab: address range %s exhausted", c.opts.AddressRange)
	}
	c.nextAddr = a.Next()
	return a, nil
}

func apiTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
