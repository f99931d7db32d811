// Package vultrlab is a fake of the Vultr API v2, as github.com/vultr/govultr/v3 uses it, for tests:
// instances (create, get, list by tag, delete, halt, start), snapshots made from a URL, reserved
// IPs (create, list, attach, detach, delete) and block storage with its snapshots (blockstorage.go), written from Vultr's API reference
// (https://www.vultr.com/api/) and govultr's request and response types.
//
// What it keeps to: every request needs "Authorization: Bearer <key>" (401 otherwise); bodies and
// answers are JSON with the resource under its singular or plural key; lists are paginated with
// per_page (default 100, at most 500) and an opaque cursor, the next one in meta.links.next;
// errors are {"error": "...", "status": N}. A queued Fault answers before the route runs (so it has
// no effect), 429 with a Retry-After header as Vultr's rate limiter does.
//
// An instance is pending for Options.PendingPolls reads of it (GET or a list holding it), with
// main_ip 0.0.0.0, then active with its own loopback address from Options.AddressRange. A reserved
// IP is another loopback address of that range on which the fake listens on Options.Ports and
// forwards each new connection to the instance it is attached to at that moment. Left out: plans,
// regions and OS catalogs (any plan and region is accepted; the region must be the fake's),
// backups, ISOs, firewall groups, IPv6.
package vultrlab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultRegion is the region the fake serves when Options.Region is empty.
const DefaultRegion = "ewr"

// Options configure a fake.
type Options struct {
	// APIKey is the only key the fake accepts; empty means a random one (APIKey tells it).
	APIKey string
	// Region is the one region the fake has; requests naming another are refused.
	Region string
	// AddressRange is where instances' main IPs and reserved IPs come from: loopback addresses,
	// handed out in order. The default is a random /24 in 127.1.0.0/16.
	AddressRange netip.Prefix
	// Ports are the ports a reserved IP forwards.
	Ports []int
	// PendingPolls is how many reads see a new or started instance pending; 0 means 1.
	PendingPolls int
	// Dir holds downloaded snapshots and instances' disks; empty means a t.TempDir().
	Dir string
	// Hypervisor boots instances; nil means instances exist only as API state.
	Hypervisor Hypervisor
	// Routes are services "in the VPC" every booted instance reaches (MachineSpec.Routes).
	Routes map[netip.AddrPort]netip.AddrPort
}

// Cloud is a running fake. Its methods are safe for concurrent use.
type Cloud struct {
	t    testing.TB
	opts Options
	srv  *httptest.Server
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu          sync.Mutex
	nextAddr    netip.Addr
	instances   map[string]*instance
	snapshots   map[string]*snapshot
	rips        map[string]*reservedIP
	blocks      map[string]*block
	blockSnaps  map[string]*blockSnapshot
	faults      []*queuedFault
	refuse      []string          // reasons of the next instance creations to refuse
	failSnaps   []string          // reasons of the next snapshot downloads to fail
	failedSnaps map[string]string // snapshot ID -> why it failed
	bootErrors  map[string]string // instance ID -> why its last boot failed
	// lastConsole is the console of each instance whose machine was stopped, as it was then: what
	// a test shows of an instance drover destroyed after it failed its health check.
	lastConsole map[string][]byte
	log         []Request
}

// New starts the fake's API on loopback; it and the reserved-IP proxies stop when the test ends.
func New(t testing.TB, opts Options) *Cloud {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = randomHex(18)
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if !opts.AddressRange.IsValid() {
		b := make([]byte, 1)
		_, _ = rand.Read(b)
		opts.AddressRange = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 1, b[0], 0}), 24)
	}
	if !opts.AddressRange.Addr().IsLoopback() {
		t.Fatalf("vultrlab: AddressRange %s is not loopback", opts.AddressRange)
	}
	if opts.PendingPolls == 0 {
		opts.PendingPolls = 1
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c := &Cloud{
		t: t, opts: opts, nextAddr: opts.AddressRange.Masked().Addr().Next(),
		instances: map[string]*instance{}, snapshots: map[string]*snapshot{}, rips: map[string]*reservedIP{},
		blocks: map[string]*block{}, blockSnaps: map[string]*blockSnapshot{},
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.srv = httptest.NewServer(c.routes())
	t.Cleanup(c.close)
	return c
}

// URL is the API's base URL (govultr's SetBaseURL).
func (c *Cloud) URL() string { return c.srv.URL }

// APIKey is the key the fake accepts.
func (c *Cloud) APIKey() string { return c.opts.APIKey }

// Region is the fake's one region.
func (c *Cloud) Region() string { return c.opts.Region }

func (c *Cloud) close() {
	c.srv.Close()
	c.stop()
	c.mu.Lock()
	for _, r := range c.rips {
		r.proxy.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	var machines []Machine
	for _, in := range c.instances {
		if in.machine != nil {
			machines = append(machines, in.machine)
			in.machine = nil
		}
	}
	c.mu.Unlock()
	for _, m := range machines {
		if err := m.Stop(); err != nil {
			c.t.Errorf("vultrlab: stopping a machine at the end of the test: %v", err)
		}
	}
}

// Request is one request the fake received, for tests to assert on.
type Request struct {
	Time   time.Time
	Method string
	Route  string // the route's pattern, such as "POST /v2/instances"
	Path   string
	Status int
}

// Requests returns the requests received so far, in order.
func (c *Cloud) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

func (c *Cloud) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(r *http.Request) (int, any)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			status, body := c.serve(pattern, r, h)
			c.mu.Lock()
			c.log = append(c.log, Request{time.Now(), r.Method, pattern, r.URL.Path, status})
			c.mu.Unlock()
			if status == http.StatusNoContent || body == nil {
				w.WriteHeader(status)
				return
			}
			if f, ok := body.(faultAnswer); ok {
				if f.retryAfter > 0 {
					w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
				}
				body = apiError{f.msg, status}
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(body)
		})
	}
	handle("POST /v2/instances", c.createInstance)
	handle("GET /v2/instances", c.listInstances)
	handle("GET /v2/instances/{id}", c.getInstance)
	handle("DELETE /v2/instances/{id}", c.deleteInstance)
	handle("PATCH /v2/instances/{id}", c.updateInstance)
	handle("GET /v2/instances/{id}/user-data", c.getUserData)
	handle("POST /v2/instances/{id}/halt", c.haltInstance)
	handle("POST /v2/instances/{id}/start", c.startInstance)
	handle("POST /v2/snapshots/create-from-url", c.createSnapshotFromURL)
	handle("GET /v2/snapshots", c.listSnapshots)
	handle("GET /v2/snapshots/{id}", c.getSnapshot)
	handle("DELETE /v2/snapshots/{id}", c.deleteSnapshot)
	handle("POST /v2/reserved-ips", c.createReservedIP)
	handle("GET /v2/reserved-ips", c.listReservedIPs)
	handle("GET /v2/reserved-ips/{id}", c.getReservedIP)
	handle("DELETE /v2/reserved-ips/{id}", c.deleteReservedIP)
	handle("POST /v2/reserved-ips/{id}/attach", c.attachReservedIP)
	handle("POST /v2/reserved-ips/{id}/detach", c.detachReservedIP)
	handle("POST /v2/blocks", c.createBlock)
	handle("GET /v2/blocks", c.listBlocks)
	handle("GET /v2/blocks/{id}", c.getBlock)
	handle("PATCH /v2/blocks/{id}", c.updateBlock)
	handle("DELETE /v2/blocks/{id}", c.deleteBlock)
	handle("POST /v2/blocks/{id}/attach", c.attachBlock)
	handle("POST /v2/blocks/{id}/detach", c.detachBlock)
	handle("POST /v2/blocks/snapshots", c.createBlockSnapshot)
	handle("GET /v2/blocks/snapshots", c.listBlockSnapshots)
	handle("GET /v2/blocks/snapshots/{id}", c.getBlockSnapshot)
	handle("DELETE /v2/blocks/snapshots/{id}", c.deleteBlockSnapshot)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(apiError{"vultrlab: no such route " + r.Method + " " + r.URL.Path, http.StatusNotFound})
	})
	return mux
}

// serve checks the key and the faults, then runs h.
func (c *Cloud) serve(route string, r *http.Request, h func(r *http.Request) (int, any)) (int, any) {
	if err := r.Context().Err(); err != nil {
		// The client hung up before the fake took its request: it is not applied, as if it
		// had never reached the API (see dolab's serve for why). Handlers take the lock
		// themselves, so createInstance checks again under it, where a late create matters.
		return http.StatusServiceUnavailable, apiError{"client closed the request", http.StatusServiceUnavailable}
	}
	if r.Header.Get("Authorization") != "Bearer "+c.opts.APIKey {
		return http.StatusUnauthorized, apiError{"Invalid API token.", http.StatusUnauthorized}
	}
	if f, ok := c.nextFault(route); ok {
		msg := f.Message
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		return f.Status, faultAnswer{msg, f.RetryAfter}
	}
	return h(r)
}

// apiError is Vultr's error body.
type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func errorf(status int, format string, args ...any) (int, any) {
	return status, apiError{fmt.Sprintf(format, args...), status}
}

// decode reads a JSON request body into v.
func decode(r *http.Request, v any) (int, any, bool) {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		s, b := errorf(http.StatusBadRequest, "Invalid JSON body: %v", err)
		return s, b, false
	}
	return 0, nil, true
}

// meta is a list answer's pagination.
type meta struct {
	Total int   `json:"total"`
	Links links `json:"links"`
}

type links struct {
	Next string `json:"next"`
	Prev string `json:"prev"`
}

// page cuts one page out of n items as per_page and cursor ask; the cursor is the base64 of an
// offset, opaque to clients as Vultr's is.
func page(r *http.Request, n int) (from, to int, m meta, ok bool) {
	per := 100
	if s := r.URL.Query().Get("per_page"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 500 {
			return 0, 0, meta{}, false
		}
		per = v
	}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil {
			return 0, 0, meta{}, false
		}
		v, err := strconv.Atoi(strings.TrimPrefix(string(b), "next__"))
		if err != nil || v < 0 {
			return 0, 0, meta{}, false
		}
		from = min(v, n)
	}
	to = min(from+per, n)
	m.Total = n
	if to < n {
		m.Links.Next = base64.RawURLEncoding.EncodeToString([]byte("next__" + strconv.Itoa(to)))
	}
	if from > 0 {
		m.Links.Prev = base64.RawURLEncoding.EncodeToString([]byte("next__" + strconv.Itoa(max(0, from-per))))
	}
	return from, to, m, true
}

// newID is a Vultr resource ID, a UUID.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// allocAddress hands out the next loopback address of the range; c.mu is held.
func (c *Cloud) allocAddress() (netip.Addr, error) {
	a := c.nextAddr
	if !c.opts.AddressRange.Contains(a) || !c.opts.AddressRange.Contains(a.Next()) {
		return netip.Addr{}, fmt.Errorf("vultrlab: address range %s exhausted", c.opts.AddressRange)
	}
	c.nextAddr = a.Next()
	return a, nil
}

func vultrTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }
