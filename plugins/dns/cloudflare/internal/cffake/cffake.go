// Package cffake is an in-memory Cloudflare API v4, enough of it for the dns/cloudflare provider:
// GET /zones?name=, and the DNS records endpoints GET and POST /zones/{id}/dns_records,
// PATCH, PUT and DELETE /zones/{id}/dns_records/{rid} and POST /zones/{id}/dns_records/batch,
// with the API's response envelope ({success, errors: [{code, message}], messages, result,
// result_info}) and pagination.
//
// It checks what a correct client sends: the method and path, an "Authorization: Bearer" header,
// JSON bodies with known fields only and the query parameters the API documents. A request that
// breaks those rules fails the test (t.Errorf) and gets a 400. A wrong token gets the API's 403,
// as a real client can send one. Faults (429 with Retry-After, 5xx, an HTML error page) can be
// queued for the next requests.
//
// The fake follows the documented behaviour it needs, not every rule of the real API: records of
// types A, AAAA, CNAME and TXT; identical records refused (81058); a CNAME alone on its name;
// TXT records not proxiable; proxied records with TTL 1 (automatic); a batch applied as one
// transaction, deletes then patches then puts then posts.
package cffake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
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

	"github.com/drover-dev/drover/plugins/dns/internal/faults"
)

// Prefix is the path of the API's base URL.
const Prefix = "/client/v4/"

// Record is one DNS record of the fake. Name has no final dot, like the API's.
type Record struct {
	ID      string
	Name    string
	Type    string
	Content string
	TTL     int
	Proxied bool
	Comment string
}

// Fault is an error answer to requests, before they reach the API logic.
type Fault struct {
	// Status is the HTTP status: 429, 500, 502...
	Status int
	// RetryAfter is the Retry-After header, if not empty.
	RetryAfter string
	// Code and Message make the envelope's error; zero Code means none.
	Code    int
	Message string
	// HTML answers an HTML page (as a proxy in front of the API would) instead of the envelope.
	HTML bool
	// Times is how many requests get the fault; -1 means every request from now on.
	Times int
	// Method and Path, when not empty, restrict the fault to matching requests (Path is a suffix
	// of the URL path: "/dns_records/batch").
	Method string
	Path   string
}

// Request is one request the fake received.
type Request struct {
	Time   time.Time
	Method string
	// Path is relative to Prefix: "zones/ID/dns_records".
	Path  string
	Query url.Values
	// Body is the request body.
	Body []byte
	// Status is what the fake answered.
	Status int
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API base URL to give the client: "http://127.0.0.1:PORT/client/v4/".
	URL string

	t     testing.TB
	token string
	srv   *httptest.Server

	mu         sync.Mutex
	zones      []*zone
	nextID     int
	maxPerPage int
	minTTL     int
	faults     faults.Queue[Fault]
	log        []Request
}

type zone struct {
	id, name string
	records  []Record
}

// New starts a fake that accepts the API token token; it stops when the test ends.
func New(t testing.TB, token string) *Server {
	s := &Server{t: t, token: token, maxPerPage: 5000, minTTL: 30}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + Prefix
	return s
}

// SetMaxPerPage caps per_page, so a small value makes every listing take several pages.
func (s *Server) SetMaxPerPage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPerPage = n
}

// SetMinTTL sets the lowest TTL other than 1 that records may have: 60 on most plans, 30 on
// Enterprise zones (the default here).
func (s *Server) SetMinTTL(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.minTTL = n
}

// AddZone adds a zone (name without a final dot) and returns its id.
func (s *Server) AddZone(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newID()
	s.zones = append(s.zones, &zone{id: id, name: strings.TrimSuffix(strings.ToLower(name), ".")})
	return id
}

// Records returns the records of the zone named name, in creation order.
func (s *Server) Records(name string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z := s.zoneByName(name); z != nil {
		return slices.Clone(z.records)
	}
	return nil
}

// AddRecord adds a record behind the API's back, unchecked, and returns its id.
func (s *Server) AddRecord(zoneName string, r Record) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByName(zoneName)
	if z == nil {
		s.t.Fatalf("cffake: no zone %q", zoneName)
		return ""
	}
	r.ID = s.newID()
	r.Name = strings.TrimSuffix(strings.ToLower(r.Name), ".")
	z.records = append(z.records, r)
	return r.ID
}

// ReplaceSet replaces the records of name and typ behind the API's back (another admin's edit).
func (s *Server) ReplaceSet(zoneName, name, typ string, ttl int, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByName(zoneName)
	if z == nil {
		s.t.Fatalf("cffake: no zone %q", zoneName)
		return
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	z.records = slices.DeleteFunc(z.records, func(r Record) bool { return r.Name == name && r.Type == typ })
	for _, v := range values {
		if typ == "CNAME" {
			v = strings.TrimSuffix(v, ".")
		}
		z.records = append(z.records, Record{ID: s.newID(), Name: name, Type: typ, Content: v, TTL: ttl})
	}
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

func (s *Server) newID() string {
	s.nextID++
	return fmt.Sprintf("%032x", s.nextID)
}

func (s *Server) zoneByName(name string) *zone {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, z := range s.zones {
		if z.name == name {
			return z
		}
	}
	return nil
}

func (s *Server) zoneByID(id string) *zone {
	for _, z := range s.zones {
		if z.id == id {
			return z
		}
	}
	return nil
}

// apiError is an error of the envelope, with the HTTP status it comes with.
type apiError struct {
	status  int
	code    int
	message string
}

func errf(status, code int, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, Prefix)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("cffake: reading the body of %s %s: %v", r.Method, path, err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	entry := Request{Time: time.Now(), Method: r.Method, Path: path, Query: r.URL.Query(), Body: body}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { entry.Status = rec.status; s.log = append(s.log, entry) }()

	if !strings.HasPrefix(r.URL.Path, Prefix) {
		s.violation(rec, "path %q is not under %s", r.URL.Path, Prefix)
		return
	}
	if f, ok := s.faults.Next(r.Method, r.URL.Path); ok {
		writeFault(rec, f)
		return
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		s.violation(rec, "%s %s: Authorization header %q is not \"Bearer TOKEN\"", r.Method, path, redact(auth))
		return
	}
	if tok != s.token {
		writeError(rec, errf(http.StatusForbidden, 9109, "Invalid access token"))
		return
	}
	if r.Header.Get("Accept") != "application/json" {
		s.violation(rec, "%s %s: Accept is %q, want application/json", r.Method, path, r.Header.Get("Accept"))
		return
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "zones":
		s.route(rec, r, map[string]func(http.ResponseWriter, *http.Request){http.MethodGet: s.listZones})
		return
	case len(parts) >= 3 && parts[0] == "zones" && parts[2] == "dns_records":
		z := s.zoneByID(parts[1])
		if z == nil {
			writeError(rec, errf(http.StatusNotFound, 7003, "Could not route to /%s, perhaps your object identifier is invalid?", path))
			return
		}
		switch {
		case len(parts) == 3:
			s.route(rec, r, map[string]func(http.ResponseWriter, *http.Request){
				http.MethodGet:  func(w http.ResponseWriter, r *http.Request) { s.listRecords(w, r, z) },
				http.MethodPost: func(w http.ResponseWriter, r *http.Request) { s.createRecord(w, r, z) },
			})
			return
		case len(parts) == 4 && parts[3] == "batch":
			s.route(rec, r, map[string]func(http.ResponseWriter, *http.Request){
				http.MethodPost: func(w http.ResponseWriter, r *http.Request) { s.batch(w, r, z) },
			})
			return
		case len(parts) == 4:
			id := parts[3]
			s.route(rec, r, map[string]func(http.ResponseWriter, *http.Request){
				http.MethodPatch:  func(w http.ResponseWriter, r *http.Request) { s.updateRecord(w, r, z, id, false) },
				http.MethodPut:    func(w http.ResponseWriter, r *http.Request) { s.updateRecord(w, r, z, id, true) },
				http.MethodDelete: func(w http.ResponseWriter, r *http.Request) { s.deleteRecord(w, r, z, id) },
			})
			return
		}
	}
	s.violation(rec, "%s %s: no such endpoint", r.Method, path)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, methods map[string]func(http.ResponseWriter, *http.Request)) {
	h, ok := methods[r.Method]
	if !ok {
		s.violation(w, "%s %s: method not allowed", r.Method, r.URL.Path)
		return
	}
	h(w, r)
}

// violation is a request a correct client does not send: the test fails.
func (s *Server) violation(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.t.Errorf("cffake: bad request: %s", msg)
	writeError(w, errf(http.StatusBadRequest, 400, "cffake: %s", msg))
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.HTML {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", f.Status, http.StatusText(f.Status))
		return
	}
	e := &apiError{status: f.Status, code: f.Code, message: f.Message}
	if e.code == 0 {
		e.code, e.message = f.Status, http.StatusText(f.Status)
	}
	writeError(w, e)
}

type envelope struct {
	Success    bool         `json:"success"`
	Errors     []errorEntry `json:"errors"`
	Messages   []errorEntry `json:"messages"`
	Result     any          `json:"result"`
	ResultInfo *resultInfo  `json:"result_info,omitempty"`
}

type errorEntry struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, envelope{Errors: []errorEntry{{e.code, e.message}}, Messages: []errorEntry{}})
}

func writeResult(w http.ResponseWriter, result any, info *resultInfo) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Errors: []errorEntry{}, Messages: []errorEntry{}, Result: result, ResultInfo: info})
}

// page cuts items to the page the query asks for.
func page[T any](s *Server, q url.Values, items []T) ([]T, *resultInfo, *apiError) {
	n, per := 1, 100
	if v := q.Get("page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 {
			return nil, nil, errf(http.StatusBadRequest, 1004, "page must be a positive integer, got %q", v)
		}
		n = p
	}
	if v := q.Get("per_page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 {
			return nil, nil, errf(http.StatusBadRequest, 1004, "per_page must be a positive integer, got %q", v)
		}
		per = p
	}
	per = min(per, s.maxPerPage)
	total := len(items)
	pages := (total + per - 1) / per
	lo := min((n-1)*per, total)
	hi := min(lo+per, total)
	out := items[lo:hi]
	if out == nil {
		out = []T{}
	}
	return out, &resultInfo{Page: n, PerPage: per, Count: len(out), TotalCount: total, TotalPages: pages}, nil
}

func (s *Server) checkQuery(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for k := range r.URL.Query() {
		if !slices.Contains(allowed, k) {
			s.violation(w, "%s %s: unknown query parameter %q", r.Method, r.URL.Path, k)
			return false
		}
	}
	return true
}

type zoneJSON struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Status  string            `json:"status"`
	Account map[string]string `json:"account"`
}

func (s *Server) listZones(w http.ResponseWriter, r *http.Request) {
	if !s.checkQuery(w, r, "name", "page", "per_page", "status", "account.id", "account.name", "order", "direction", "match") {
		return
	}
	q := r.URL.Query()
	var out []zoneJSON
	for _, z := range s.zones {
		if name := q.Get("name"); name != "" && !strings.EqualFold(name, z.name) {
			continue
		}
		out = append(out, zoneJSON{ID: z.id, Name: z.name, Status: "active", Account: map[string]string{"id": "acc1", "name": "drover test"}})
	}
	res, info, e := page(s, q, out)
	if e != nil {
		writeError(w, e)
		return
	}
	writeResult(w, res, info)
}

type recordJSON struct {
	ID         string         `json:"id"`
	ZoneID     string         `json:"zone_id"`
	ZoneName   string         `json:"zone_name"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Content    string         `json:"content"`
	Proxiable  bool           `json:"proxiable"`
	Proxied    bool           `json:"proxied"`
	TTL        int            `json:"ttl"`
	Comment    *string        `json:"comment"`
	Tags       []string       `json:"tags"`
	Settings   map[string]any `json:"settings"`
	Meta       map[string]any `json:"meta"`
	CreatedOn  string         `json:"created_on"`
	ModifiedOn string         `json:"modified_on"`
}

func toJSON(z *zone, r Record) recordJSON {
	j := recordJSON{
		ID: r.ID, ZoneID: z.id, ZoneName: z.name, Name: r.Name, Type: r.Type, Content: r.Content,
		Proxiable: r.Type != "TXT", Proxied: r.Proxied, TTL: r.TTL, Tags: []string{},
		Settings: map[string]any{}, Meta: map[string]any{},
		CreatedOn: "2026-01-01T00:00:00Z", ModifiedOn: "2026-01-01T00:00:00Z",
	}
	if r.Comment != "" {
		c := r.Comment
		j.Comment = &c
	}
	return j
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, z *zone) {
	if !s.checkQuery(w, r, "name", "name.exact", "name.endswith", "name.startswith", "name.contains", "type", "content", "content.exact", "proxied", "page", "per_page", "match", "order", "direction") {
		return
	}
	q := r.URL.Query()
	name := q.Get("name.exact")
	if name == "" {
		name = q.Get("name")
	}
	content := q.Get("content.exact")
	if content == "" {
		content = q.Get("content")
	}
	var out []recordJSON
	for _, rec := range z.records {
		if (name != "" && !strings.EqualFold(rec.Name, strings.TrimSuffix(name, "."))) ||
			!strings.HasSuffix(rec.Name, strings.ToLower(q.Get("name.endswith"))) ||
			!strings.HasPrefix(rec.Name, strings.ToLower(q.Get("name.startswith"))) ||
			!strings.Contains(rec.Name, strings.ToLower(q.Get("name.contains"))) ||
			(q.Get("type") != "" && rec.Type != q.Get("type")) ||
			(content != "" && rec.Content != content) {
			continue
		}
		out = append(out, toJSON(z, rec))
	}
	res, info, e := page(s, q, out)
	if e != nil {
		writeError(w, e)
		return
	}
	writeResult(w, res, info)
}

// recordBody is a record in a request body. Pointers tell absent fields from zero values.
type recordBody struct {
	ID             *string         `json:"id"`
	Name           *string         `json:"name"`
	Type           *string         `json:"type"`
	Content        *string         `json:"content"`
	TTL            *float64        `json:"ttl"`
	Proxied        *bool           `json:"proxied"`
	Comment        *string         `json:"comment"`
	Tags           []string        `json:"tags"`
	Settings       json.RawMessage `json:"settings"`
	PrivateRouting *bool           `json:"private_routing"`
}

// decode reads a JSON body strictly: an unknown field is a client bug.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		s.violation(w, "%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, ct)
		return false
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		s.violation(w, "%s %s: reading the body: %v", r.Method, r.URL.Path, err)
		return false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		s.violation(w, "%s %s: body %s: %v", r.Method, r.URL.Path, b, err)
		return false
	}
	return true
}

// apply merges body into rec (all of it for a PUT or a create, the present fields for a PATCH)
// and checks the result against the zone's other records.
func (s *Server) apply(z *zone, records []Record, rec Record, body recordBody, full bool) (Record, *apiError) {
	if full {
		if body.Name == nil || body.Type == nil || body.Content == nil || body.TTL == nil {
			return rec, errf(http.StatusBadRequest, 9005, "name, type, content and ttl are required")
		}
		rec.Proxied, rec.Comment = false, ""
	}
	if body.Name != nil {
		rec.Name = strings.TrimSuffix(strings.ToLower(*body.Name), ".")
	}
	if body.Type != nil {
		rec.Type = *body.Type
	}
	if body.Content != nil {
		rec.Content = *body.Content
	}
	if body.TTL != nil {
		if *body.TTL != math.Trunc(*body.TTL) {
			return rec, errf(http.StatusBadRequest, 9021, "Invalid TTL. Must be an integer.")
		}
		rec.TTL = int(*body.TTL)
	}
	if body.Proxied != nil {
		rec.Proxied = *body.Proxied
	}
	if body.Comment != nil {
		rec.Comment = *body.Comment
	}
	if rec.Name != z.name && !strings.HasSuffix(rec.Name, "."+z.name) {
		return rec, errf(http.StatusBadRequest, 9007, "Record name %s is not within zone %s.", rec.Name, z.name)
	}
	switch rec.Type {
	case "A", "AAAA":
		a, err := netip.ParseAddr(rec.Content)
		if err != nil || a.Is4() != (rec.Type == "A") {
			return rec, errf(http.StatusBadRequest, 9005, "Content for %s record is invalid. Must be a valid IPv%s address.", rec.Type, map[bool]string{true: "4", false: "6"}[rec.Type == "A"])
		}
		rec.Content = a.String()
	case "CNAME":
		if rec.Content == "" || strings.HasSuffix(rec.Content, ".") {
			return rec, errf(http.StatusBadRequest, 9007, "Content for CNAME record is invalid.")
		}
	case "TXT":
		if rec.Proxied {
			return rec, errf(http.StatusBadRequest, 9004, "This record type cannot be proxied.")
		}
	default:
		return rec, errf(http.StatusBadRequest, 1004, "DNS Validation Error: type %q is not supported by cffake", rec.Type)
	}
	if rec.Proxied {
		rec.TTL = 1
	}
	if rec.TTL != 1 && (rec.TTL < s.minTTL || rec.TTL > 86400) {
		return rec, errf(http.StatusBadRequest, 9021, "Invalid TTL. Must be between %d and 86400 seconds, or 1 for Automatic.", s.minTTL)
	}
	for _, o := range records {
		if o.ID == rec.ID || o.Name != rec.Name {
			continue
		}
		if o.Type == rec.Type && o.Content == rec.Content {
			return rec, errf(http.StatusBadRequest, 81058, "An identical record already exists.")
		}
		if (o.Type == "CNAME") != (rec.Type == "CNAME") && (o.Type != "TXT" && rec.Type != "TXT") {
			return rec, errf(http.StatusBadRequest, 81053, "An A, AAAA, or CNAME record with that host already exists.")
		}
		if o.Type == "CNAME" && rec.Type == "CNAME" {
			return rec, errf(http.StatusBadRequest, 81053, "An A, AAAA, or CNAME record with that host already exists.")
		}
	}
	return rec, nil
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, z *zone) {
	var body recordBody
	if !s.checkQuery(w, r) || !s.decode(w, r, &body) {
		return
	}
	if body.ID != nil {
		s.violation(w, "POST %s: a new record has no id", r.URL.Path)
		return
	}
	rec, e := s.apply(z, z.records, Record{ID: s.newID()}, body, true)
	if e != nil {
		writeError(w, e)
		return
	}
	z.records = append(z.records, rec)
	writeResult(w, toJSON(z, rec), nil)
}

func (s *Server) updateRecord(w http.ResponseWriter, r *http.Request, z *zone, id string, full bool) {
	var body recordBody
	if !s.checkQuery(w, r) || !s.decode(w, r, &body) {
		return
	}
	i := slices.IndexFunc(z.records, func(rec Record) bool { return rec.ID == id })
	if i < 0 {
		writeError(w, errf(http.StatusNotFound, 81044, "Record does not exist."))
		return
	}
	rec, e := s.apply(z, z.records, z.records[i], body, full)
	if e != nil {
		writeError(w, e)
		return
	}
	z.records[i] = rec
	writeResult(w, toJSON(z, rec), nil)
}

func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request, z *zone, id string) {
	if !s.checkQuery(w, r) {
		return
	}
	if r.ContentLength > 0 {
		s.violation(w, "DELETE %s: unexpected body", r.URL.Path)
		return
	}
	i := slices.IndexFunc(z.records, func(rec Record) bool { return rec.ID == id })
	if i < 0 {
		writeError(w, errf(http.StatusNotFound, 81044, "Record does not exist."))
		return
	}
	z.records = slices.Delete(z.records, i, i+1)
	writeResult(w, map[string]string{"id": id}, nil)
}

type batchBody struct {
	Deletes []recordBody `json:"deletes"`
	Patches []recordBody `json:"patches"`
	Puts    []recordBody `json:"puts"`
	Posts   []recordBody `json:"posts"`
}

type batchResult struct {
	Deletes []recordJSON `json:"deletes"`
	Patches []recordJSON `json:"patches"`
	Puts    []recordJSON `json:"puts"`
	Posts   []recordJSON `json:"posts"`
}

// batch applies the operations to a copy of the zone's records and keeps the copy only if every
// one of them succeeded: one transaction.
func (s *Server) batch(w http.ResponseWriter, r *http.Request, z *zone) {
	var body batchBody
	if !s.checkQuery(w, r) || !s.decode(w, r, &body) {
		return
	}
	if len(body.Deletes)+len(body.Patches)+len(body.Puts)+len(body.Posts) == 0 {
		s.violation(w, "POST %s: empty batch", r.URL.Path)
		return
	}
	recs := slices.Clone(z.records)
	res := batchResult{Deletes: []recordJSON{}, Patches: []recordJSON{}, Puts: []recordJSON{}, Posts: []recordJSON{}}
	find := func(id *string) (int, *apiError) {
		if id == nil || *id == "" {
			return -1, errf(http.StatusBadRequest, 1004, "id is required")
		}
		i := slices.IndexFunc(recs, func(rec Record) bool { return rec.ID == *id })
		if i < 0 {
			return -1, errf(http.StatusNotFound, 81044, "Record does not exist.")
		}
		return i, nil
	}
	for _, d := range body.Deletes {
		if d.Name != nil || d.Type != nil || d.Content != nil || d.TTL != nil {
			s.violation(w, "POST %s: a delete has only an id", r.URL.Path)
			return
		}
		i, e := find(d.ID)
		if e != nil {
			writeError(w, e)
			return
		}
		res.Deletes = append(res.Deletes, toJSON(z, recs[i]))
		recs = slices.Delete(recs, i, i+1)
	}
	for _, group := range []struct {
		ops  []recordBody
		full bool
		out  *[]recordJSON
	}{{body.Patches, false, &res.Patches}, {body.Puts, true, &res.Puts}} {
		for _, op := range group.ops {
			i, e := find(op.ID)
			if e != nil {
				writeError(w, e)
				return
			}
			rec, e := s.apply(z, recs, recs[i], op, group.full)
			if e != nil {
				writeError(w, e)
				return
			}
			recs[i] = rec
			*group.out = append(*group.out, toJSON(z, rec))
		}
	}
	for _, op := range body.Posts {
		if op.ID != nil {
			s.violation(w, "POST %s: a post has no id", r.URL.Path)
			return
		}
		rec, e := s.apply(z, recs, Record{ID: s.newID()}, op, true)
		if e != nil {
			writeError(w, e)
			return
		}
		recs = append(recs, rec)
		res.Posts = append(res.Posts, toJSON(z, rec))
	}
	z.records = recs
	writeResult(w, res, nil)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// redact shows the scheme of an Authorization header, never its credentials.
func redact(auth string) string {
	if scheme, _, ok := strings.Cut(auth, " "); ok {
		return scheme + " [redacted]"
	}
	if auth == "" {
		return ""
	}
	return "[redacted]"
}
