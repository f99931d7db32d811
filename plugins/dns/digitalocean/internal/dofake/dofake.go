// Package dofake is an in-memory DigitalOcean API v2, enough of it for the dns/digitalocean
// provider: GET /v2/domains/{domain}, GET and POST /v2/domains/{domain}/records, and GET, PUT and
// DELETE /v2/domains/{domain}/records/{id}, written from the API reference: JSON bodies with the
// resource root as the key ("domain_record", "domain_records"), pagination with page and per_page
// (default 20, at most 200) and links.pages (first, prev, next, last as absolute URLs, left out
// when they make no sense), meta.total, the RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset headers on every answer, and errors as {"id", "message"} JSON: 401
// "unauthorized" without the bearer token, 404 "not_found" for an unknown domain or record, 422
// "unprocessable_entity" for a record the API refuses.
//
// It checks what a correct client sends: the method and path, the Content-Type of bodies, JSON
// bodies with the record's fields only, the query parameters the reference documents. A request
// that breaks those rules fails the test (t.Errorf) and gets a 400. Faults (429 with Retry-After
// or with the rate limit used up, 5xx, an HTML error page) can be queued for the next requests.
//
// The fake follows the documented behaviour drover needs, not every rule of the real API: record
// types A, AAAA, CNAME and TXT; names relative to the domain, "@" for the apex; TTLs of 30 s or
// more, 1800 when left out; a CNAME target must end with a dot (the API's rule), and is returned
// without it, as the API returns targets. The wording of its 422 messages is its own.
package dofake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns/internal/faults"
)

// Record is one DNS record of the fake. Name is relative to the domain ("@", "www"); Data is as
// the API returns it.
type Record struct {
	ID   int
	Type string
	Name string
	Data string
	TTL  int
}

// Fault is an error answer to requests, before they reach the API logic.
type Fault struct {
	// Status is the HTTP status: 429, 500, 503...
	Status int
	// RetryAfter is the Retry-After header, if not empty.
	RetryAfter string
	// RateLimitReset, when not zero, answers RateLimit-Remaining: 0 and this RateLimit-Reset.
	RateLimitReset time.Time
	// ID and Message make DigitalOcean's error JSON; an empty ID means one named after the status.
	ID      string
	Message string
	// HTML answers an HTML page (as a proxy in front of the API would) instead of the JSON.
	HTML bool
	// Times is how many requests get the fault; -1 means every request from now on.
	Times int
	// Method and Path, when not empty, restrict the fault to matching requests (Path is a suffix
	// of the URL path: "/records").
	Method string
	Path   string
}

// Request is one request the fake received.
type Request struct {
	Time   time.Time
	Method string
	Path   string // "/v2/domains/example.com/records"
	Query  url.Values
	Body   []byte
	// Status is what the fake answered.
	Status int
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API base URL to give the client: "http://127.0.0.1:PORT/".
	URL string

	t     testing.TB
	token string
	srv   *httptest.Server

	mu         sync.Mutex
	domains    map[string][]Record
	nextID     int
	maxPerPage int
	used       int // requests counted against the rate limit
	// LimitRequests: requests left before limitReset; none left means 429s until then.
	limitLeft  int
	limitReset time.Time
	faults     faults.Queue[Fault]
	log        []Request
}

// rateLimit is the fake's hourly request limit, as the API reports it.
const rateLimit = 5000

// New starts a fake that accepts the API token token; it stops when the test ends.
func New(t testing.TB, token string) *Server {
	s := &Server{t: t, token: token, domains: map[string][]Record{}, nextID: 3352896, maxPerPage: 200}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + "/"
	return s
}

// SetMaxPerPage caps per_page below the API's 200, so every listing takes several pages.
func (s *Server) SetMaxPerPage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPerPage = n
}

// AddDomain adds a domain (name without a final dot) with the NS records DigitalOcean gives it.
func (s *Server) AddDomain(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	s.domains[name] = nil
	for i := 1; i <= 3; i++ {
		s.add(name, Record{Type: "NS", Name: "@", Data: fmt.Sprintf("ns%d.digitalocean.com", i), TTL: 1800})
	}
}

// Records returns the records of the domain, in creation order, its NS records included.
func (s *Server) Records(domain string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.domains[strings.TrimSuffix(strings.ToLower(domain), ".")])
}

// AddRecord adds a record behind the API's back, unchecked, and returns its id.
func (s *Server) AddRecord(domain string, r Record) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(strings.TrimSuffix(strings.ToLower(domain), "."), r)
}

func (s *Server) add(domain string, r Record) int {
	if _, ok := s.domains[domain]; !ok {
		s.t.Fatalf("dofake: no domain %q", domain)
		return 0
	}
	s.nextID++
	r.ID = s.nextID
	s.domains[domain] = append(s.domains[domain], r)
	return r.ID
}

// ReplaceSet replaces the records of the relative name and typ behind the API's back (another
// admin's edit); values are data as the API takes it.
func (s *Server) ReplaceSet(domain, name, typ string, ttl int, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	s.domains[domain] = slices.DeleteFunc(s.domains[domain], func(r Record) bool { return r.Name == name && r.Type == typ })
	for _, v := range values {
		if typ == "CNAME" {
			v = strings.TrimSuffix(v, ".")
		}
		s.add(domain, Record{Type: typ, Name: name, Data: v, TTL: ttl})
	}
}

// LimitRequests makes the rate limit allow n more requests until reset: answers say how many
// remain (RateLimit-Remaining) and when the oldest expires (RateLimit-Reset: reset), and once none
// remain, requests get the API's 429 "too_many_requests", without Retry-After, until reset.
func (s *Server) LimitRequests(n int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The header has whole seconds: the limit ends at the second it names, reset rounded up.
	sec := reset.Unix()
	if time.Unix(sec, 0).Before(reset) {
		sec++
	}
	s.limitLeft, s.limitReset = n, time.Unix(sec, 0)
}

// Fail queues a fault; faults answer requests in the order they were queued.
func (s *Server) Fail(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.Add(f, faults.Match{Times: f.Times, Method: f.Method, Path: f.Path})
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// answer is what a handler decided: a status and a JSON body (nil: none).
type answer struct {
	status int
	body   any
}

func errorAnswer(status int, id, msg string) answer {
	return answer{status, map[string]string{"id": id, "message": msg}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	req := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body}
	s.used++
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(rateLimit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(rateLimit-s.used, 0)))
	h.Set("RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	a := s.route(r, body, h)
	req.Status = a.status
	s.log = append(s.log, req)
	if a.body == nil {
		w.WriteHeader(a.status)
		return
	}
	if html, ok := a.body.(htmlPage); ok {
		h.Set("Content-Type", "text/html")
		w.WriteHeader(a.status)
		fmt.Fprint(w, string(html))
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

type htmlPage string

func (s *Server) route(r *http.Request, body []byte, h http.Header) answer {
	if f, ok := s.faults.Next(r.Method, r.URL.Path); ok {
		if f.RetryAfter != "" {
			h.Set("Retry-After", f.RetryAfter)
		}
		if !f.RateLimitReset.IsZero() {
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", strconv.FormatInt(f.RateLimitReset.Unix(), 10))
		}
		if f.HTML {
			return answer{f.Status, htmlPage(fmt.Sprintf("<html><body><h1>%d %s</h1></body></html>", f.Status, http.StatusText(f.Status)))}
		}
		id, msg := f.ID, f.Message
		if id == "" {
			id = strings.ToLower(strings.ReplaceAll(http.StatusText(f.Status), " ", "_"))
		}
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		return errorAnswer(f.Status, id, msg)
	}
	if time.Now().Before(s.limitReset) {
		h.Set("RateLimit-Reset", strconv.FormatInt(s.limitReset.Unix(), 10))
		if s.limitLeft <= 0 {
			h.Set("RateLimit-Remaining", "0")
			return errorAnswer(http.StatusTooManyRequests, "too_many_requests", "API Rate limit exceeded.")
		}
		s.limitLeft--
		h.Set("RateLimit-Remaining", strconv.Itoa(s.limitLeft))
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		return errorAnswer(http.StatusUnauthorized, "unauthorized", "Unable to authenticate you")
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/domains/"), "/")
	if !strings.HasPrefix(r.URL.Path, "/v2/domains/") || parts[0] == "" || len(parts) > 3 || (len(parts) > 1 && parts[1] != "records") {
		return s.bad("unexpected path %s %s", r.Method, r.URL.Path)
	}
	domain := parts[0]
	recs, ok := s.domains[domain]
	if !ok {
		return errorAnswer(http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		return answer{http.StatusOK, map[string]any{"domain": map[string]any{"name": domain, "ttl": 1800, "zone_file": s.zoneFile(domain, recs)}}}
	case len(parts) == 2 && r.Method == http.MethodGet:
		return s.list(r, domain, recs)
	case len(parts) == 2 && r.Method == http.MethodPost:
		return s.create(r, domain, body)
	case len(parts) == 3:
		id, err := strconv.Atoi(parts[2])
		if err != nil {
			return s.bad("record id %q is not a number", parts[2])
		}
		i := slices.IndexFunc(recs, func(rec Record) bool { return rec.ID == id })
		if i < 0 {
			return errorAnswer(http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		}
		switch r.Method {
		case http.MethodGet:
			return answer{http.StatusOK, map[string]any{"domain_record": recordJSON(recs[i])}}
		case http.MethodPut:
			return s.update(r, domain, i, body)
		case http.MethodDelete:
			s.domains[domain] = slices.Delete(recs, i, i+1)
			return answer{http.StatusNoContent, nil}
		}
	}
	return s.bad("unexpected method %s %s", r.Method, r.URL.Path)
}

// bad fails the test: a correct client does not send such a request.
func (s *Server) bad(format string, args ...any) answer {
	msg := fmt.Sprintf(format, args...)
	s.t.Errorf("dofake: %s", msg)
	return errorAnswer(http.StatusBadRequest, "bad_request", msg)
}

func (s *Server) zoneFile(domain string, recs []Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL 1800\n", domain)
	for _, r := range recs {
		fmt.Fprintf(&b, "%s\tIN\t%s\t%s\n", r.Name, r.Type, r.Data)
	}
	return b.String()
}

func recordJSON(r Record) map[string]any {
	return map[string]any{"id": r.ID, "type": r.Type, "name": r.Name, "data": r.Data, "priority": nil,
		"port": nil, "ttl": r.TTL, "weight": nil, "flags": nil, "tag": nil}
}
