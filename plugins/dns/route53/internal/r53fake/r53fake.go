// Package r53fake is an in-memory Amazon Route 53 REST/XML API (version 2013-04-01), enough of
// it for the dns/route53 provider: ListHostedZonesByName (GET /2013-04-01/hostedzonesbyname),
// ListResourceRecordSets (GET /2013-04-01/hostedzone/{Id}/rrset), ChangeResourceRecordSets
// (POST /2013-04-01/hostedzone/{Id}/rrset) and GetChange (GET /2013-04-01/change/{Id}).
//
// It checks what a correct client sends: the method and path, a SigV4 Authorization header for
// the route53 service in us-east-1 (its form and credential scope; the signature itself is not
// verified), the request's XML document, with only the elements drover uses, and the query
// parameters the API documents. A request that breaks those rules fails the test (t.Errorf) and
// gets a 400. A wrong access key gets the API's 403.
//
// A change batch is validated and applied whole or not at all, with Route 53's rules: CREATE of an
// existing set, DELETE of a missing set or of a set whose TTL or values differ are refused with
// InvalidChangeBatch; UPSERT replaces. A change is PENDING for the first N GetChange calls
// (SetPendingPolls), then INSYNC. Faults (Throttling, PriorRequestNotComplete, 5xx) can be queued
// for the next requests.
package r53fake

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns/internal/faults"
)

// Namespace is the XML namespace of the API's documents.
const Namespace = "https://route53.amazonaws.com/doc/2013-04-01/"

// RecordSet is one record set of the fake. Name is fully qualified and lower case.
type RecordSet struct {
	Name   string
	Type   string
	TTL    int64
	Values []string
}

// Fault is an error answer to requests, before they reach the API logic.
type Fault struct {
	// Status is the HTTP status: 400 for Throttling and PriorRequestNotComplete, 5xx...
	Status int
	// Code and Message go in the ErrorResponse document; Type is "Sender" unless set.
	Code, Message, Type string
	// Times is how many requests get the fault; -1 means every request from now on.
	Times int
	// Method and Path, when not empty, restrict the fault to matching requests (Path is a suffix
	// of the URL path, such as "/rrset").
	Method, Path string
}

// Request is one request the fake received.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Query  url.Values
	Body   []byte
	// Status is what the fake answered, Code the error code if it was an error.
	Status int
	Code   string
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the endpoint to give the client (its BaseEndpoint).
	URL string

	t         testing.TB
	accessKey string
	srv       *httptest.Server
	authRE    *regexp.Regexp

	mu       sync.Mutex
	zones    []*zone
	changes  map[string]*changeInfo
	nextID   int
	pending  int
	maxItems int
	faults   faults.Queue[Fault]
	log      []Request
}

type zone struct {
	id, name string
	private  bool
	sets     []RecordSet
}

type changeInfo struct {
	id        string
	submitted time.Time
	comment   string
	polls     int
}

// New starts a fake that accepts requests signed with the access key ID accessKey; it stops
// when the test ends.
func New(t testing.TB, accessKey string) *Server {
	s := &Server{t: t, accessKey: accessKey, changes: map[string]*changeInfo{}, maxItems: 300,
		authRE: regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/us-east-1/route53/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$`)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// SetPendingPolls makes every change PENDING for its first n GetChange calls.
func (s *Server) SetPendingPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = n
}

// SetMaxItems caps the record sets of one ListResourceRecordSets page.
func (s *Server) SetMaxItems(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxItems = n
}

// AddZone adds a hosted zone with its SOA and NS sets and returns its ID ("Z...").
func (s *Server) AddZone(name string, private bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := fmt.Sprintf("Z%020d", s.nextID)
	name = fqdn(name)
	s.zones = append(s.zones, &zone{id: id, name: name, private: private, sets: []RecordSet{
		{Name: name, Type: "NS", TTL: 172800, Values: []string{"ns-1.awsdns-00.com.", "ns-2.awsdns-00.net."}},
		{Name: name, Type: "SOA", TTL: 900, Values: []string{"ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}},
	}})
	return id
}

// Sets returns the record sets of the zone with the ID id.
func (s *Server) Sets(id string) []RecordSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z := s.zoneByID(id); z != nil {
		out := slices.Clone(z.sets)
		for i := range out {
			out[i].Values = slices.Clone(out[i].Values)
		}
		return out
	}
	return nil
}

// ReplaceSet replaces a record set behind the API's back (another admin's edit); no values
// delete it.
func (s *Server) ReplaceSet(id string, set RecordSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneByID(id)
	if z == nil {
		s.t.Fatalf("r53fake: no zone %q", id)
		return
	}
	set.Name = fqdn(set.Name)
	z.sets = slices.DeleteFunc(z.sets, func(o RecordSet) bool { return o.Name == set.Name && o.Type == set.Type })
	if len(set.Values) > 0 {
		set.Values = slices.Clone(set.Values)
		z.sets = append(z.sets, set)
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

func fqdn(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *Server) zoneByID(id string) *zone {
	id = strings.TrimPrefix(id, "/hostedzone/")
	for _, z := range s.zones {
		if z.id == id {
			return z
		}
	}
	return nil
}

// apiError is an error document with its HTTP status.
type apiError struct {
	status        int
	typ           string
	code, message string
	// messages makes an InvalidChangeBatch document with several messages.
	messages []string
}

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, typ: "Sender", code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("r53fake: reading the body of %s %s: %v", r.Method, r.URL.Path, err)
	}
	entry := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body}
	defer func() { s.log = append(s.log, entry) }()
	fail := func(e *apiError) {
		entry.Status, entry.Code = e.status, e.code
		writeError(w, e)
	}
	violation := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.t.Errorf("r53fake: bad request: %s %s: %s", r.Method, r.URL.Path, msg)
		fail(errf(http.StatusBadRequest, "InvalidInput", "r53fake: %s", msg))
	}
	if f, ok := s.faults.Next(r.Method, r.URL.Path); ok {
		typ := f.Type
		if typ == "" {
			typ = "Sender"
			if f.Status >= 500 {
				typ = "Receiver"
			}
		}
		fail(&apiError{status: f.Status, typ: typ, code: f.Code, message: f.Message})
		return
	}
	m := s.authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		violation("Authorization header is not a SigV4 signature for route53 in us-east-1: %q", redact(r.Header.Get("Authorization")))
		return
	}
	if !slices.Contains(strings.Split(m[3], ";"), "host") || !slices.Contains(strings.Split(m[3], ";"), "x-amz-date") {
		violation("SignedHeaders %q lack host or x-amz-date", m[3])
		return
	}
	if d := r.Header.Get("X-Amz-Date"); len(d) != 16 || d[:8] != m[2] {
		violation("X-Amz-Date %q does not match the credential scope's date %s", d, m[2])
		return
	}
	if m[1] != s.accessKey {
		fail(errf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/2013-04-01/")
	if !ok {
		violation("not an API path")
		return
	}
	parts := strings.Split(rest, "/")
	var e *apiError
	var out any
	switch {
	case len(parts) == 1 && parts[0] == "hostedzonesbyname" && r.Method == http.MethodGet:
		out, e = s.listZones(r.URL.Query())
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset" && r.Method == http.MethodGet:
		out, e = s.listSets(parts[1], r.URL.Query())
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset" && r.Method == http.MethodPost:
		if ct := r.Header.Get("Content-Type"); ct != "application/xml" {
			violation("Content-Type %q, want application/xml", ct)
			return
		}
		if len(r.URL.Query()) != 0 {
			violation("unexpected query %q", r.URL.RawQuery)
			return
		}
		req, msg := parseChange(body)
		if msg != "" {
			violation("%s", msg)
			return
		}
		out, e = s.change(parts[1], req)
	case len(parts) == 2 && parts[0] == "change" && r.Method == http.MethodGet:
		out, e = s.getChange(parts[1])
	default:
		violation("no such operation")
		return
	}
	if e != nil {
		fail(e)
		return
	}
	entry.Status = http.StatusOK
	writeXML(w, http.StatusOK, out)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("%08x-fake", time.Now().UnixNano()&0xffffffff))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

type errorResponse struct {
	XMLName xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

type invalidChangeBatch struct {
	XMLName   xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ InvalidChangeBatch"`
	Messages  []string `xml:"Messages>Message"`
	RequestID string   `xml:"RequestId"`
}

// writeError writes the ErrorResponse document, or Route 53's own InvalidChangeBatch document
// when a batch has several errors.
func writeError(w http.ResponseWriter, e *apiError) {
	if len(e.messages) > 1 {
		writeXML(w, e.status, invalidChangeBatch{Messages: e.messages, RequestID: "fake"})
		return
	}
	var doc errorResponse
	doc.Error.Type, doc.Error.Code, doc.Error.Message = e.typ, e.code, e.message
	doc.RequestID = "fake"
	writeXML(w, e.status, doc)
}

type hostedZoneXML struct {
	ID                     string `xml:"Id"`
	Name                   string `xml:"Name"`
	CallerReference        string `xml:"CallerReference"`
	PrivateZone            bool   `xml:"Config>PrivateZone"`
	ResourceRecordSetCount int    `xml:"ResourceRecordSetCount"`
}

type listZonesResponse struct {
	XMLName     xml.Name        `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListHostedZonesByNameResponse"`
	HostedZones []hostedZoneXML `xml:"HostedZones>HostedZone"`
	DNSName     string          `xml:"DNSName,omitempty"`
	IsTruncated bool            `xml:"IsTruncated"`
	MaxItems    int             `xml:"MaxItems"`
}

func checkQuery(q url.Values, allowed ...string) *apiError {
	for k := range q {
		if !slices.Contains(allowed, k) {
			return errf(http.StatusBadRequest, "InvalidInput", "unknown query parameter %q", k)
		}
	}
	return nil
}

// reverse is the sort key of a name in Route 53's listings: its labels from the root.
func reverse(name string) string {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

func maxItems(q url.Values, def int) (int, *apiError) {
	v := q.Get("maxitems")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errf(http.StatusBadRequest, "InvalidInput", "maxitems must be a positive integer, got %q", v)
	}
	return min(n, def), nil
}

func (s *Server) listZones(q url.Values) (any, *apiError) {
	if e := checkQuery(q, "dnsname", "hostedzoneid", "maxitems"); e != nil {
		return nil, e
	}
	n, e := maxItems(q, 100)
	if e != nil {
		return nil, e
	}
	zones := slices.Clone(s.zones)
	slices.SortStableFunc(zones, func(a, b *zone) int { return strings.Compare(reverse(a.name), reverse(b.name)) })
	resp := listZonesResponse{MaxItems: n, DNSName: q.Get("dnsname")}
	for _, z := range zones {
		if d := q.Get("dnsname"); d != "" && reverse(z.name) < reverse(fqdn(d)) {
			continue
		}
		if len(resp.HostedZones) == n {
			resp.IsTruncated = true
			break
		}
		resp.HostedZones = append(resp.HostedZones, hostedZoneXML{
			ID: "/hostedzone/" + z.id, Name: z.name, CallerReference: "drover-test-" + z.id,
			PrivateZone: z.private, ResourceRecordSetCount: len(z.sets),
		})
	}
	return resp, nil
}

type rrsXML struct {
	Name    string      `xml:"Name"`
	Type    string      `xml:"Type"`
	TTL     *int64      `xml:"TTL"`
	Records []recordXML `xml:"ResourceRecords>ResourceRecord"`
}

// recordXML is one <ResourceRecord>: a struct, so that each value gets its own element.
type recordXML struct {
	Value string `xml:"Value"`
}

func (rs rrsXML) values() []string {
	var out []string
	for _, r := range rs.Records {
		out = append(out, r.Value)
	}
	return out
}

func records(values []string) []recordXML {
	var out []recordXML
	for _, v := range values {
		out = append(out, recordXML{v})
	}
	return out
}

type listSetsResponse struct {
	XMLName        xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListResourceRecordSetsResponse"`
	Sets           []rrsXML `xml:"ResourceRecordSets>ResourceRecordSet"`
	IsTruncated    bool     `xml:"IsTruncated"`
	NextRecordName string   `xml:"NextRecordName,omitempty"`
	NextRecordType string   `xml:"NextRecordType,omitempty"`
	MaxItems       int      `xml:"MaxItems"`
}

func escape(name string) string {
	return strings.ReplaceAll(name, "*", `\052`)
}

func (s *Server) listSets(id string, q url.Values) (any, *apiError) {
	if e := checkQuery(q, "name", "type", "identifier", "maxitems"); e != nil {
		return nil, e
	}
	z := s.zoneByID(id)
	if z == nil {
		return nil, errf(http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: %s", id)
	}
	if q.Get("type") != "" && q.Get("name") == "" {
		return nil, errf(http.StatusBadRequest, "InvalidInput", "The input is not valid: type requires name")
	}
	n, e := maxItems(q, s.maxItems)
	if e != nil {
		return nil, e
	}
	sets := slices.Clone(z.sets)
	slices.SortFunc(sets, func(a, b RecordSet) int {
		if c := strings.Compare(reverse(a.Name), reverse(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	resp := listSetsResponse{MaxItems: n}
	start, startType := reverse(fqdn(q.Get("name"))), q.Get("type")
	for _, set := range sets {
		if q.Get("name") != "" {
			if c := strings.Compare(reverse(set.Name), start); c < 0 || (c == 0 && set.Type < startType) {
				continue
			}
		}
		if len(resp.Sets) == n {
			resp.IsTruncated, resp.NextRecordName, resp.NextRecordType = true, escape(set.Name), set.Type
			break
		}
		ttl := set.TTL
		resp.Sets = append(resp.Sets, rrsXML{Name: escape(set.Name), Type: set.Type, TTL: &ttl, Records: records(set.Values)})
	}
	return resp, nil
}

type changeRequest struct {
	XMLName     xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ChangeResourceRecordSetsRequest"`
	ChangeBatch struct {
		Comment string `xml:"Comment"`
		Changes []struct {
			Action string `xml:"Action"`
			Set    rrsXML `xml:"ResourceRecordSet"`
		} `xml:"Changes>Change"`
	} `xml:"ChangeBatch"`
}

// known reports whether a change request element is one drover sends; others (aliases, routing
// policies, health checks) would mean the client sent something it should not.
func known(element string) bool {
	switch element {
	case "ChangeResourceRecordSetsRequest", "ChangeBatch", "Comment", "Changes", "Change", "Action",
		"ResourceRecordSet", "Name", "Type", "TTL", "ResourceRecords", "ResourceRecord", "Value":
		return true
	}
	return false
}

// parseChange decodes a change request; a message says what is wrong with it.
func parseChange(body []byte) (changeRequest, string) {
	var req changeRequest
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return req, fmt.Sprintf("body is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if !known(se.Name.Local) {
				return req, fmt.Sprintf("unexpected element <%s>", se.Name.Local)
			}
			if se.Name.Space != Namespace {
				return req, fmt.Sprintf("element <%s> in namespace %q, want %q", se.Name.Local, se.Name.Space, Namespace)
			}
		}
	}
	if err := xml.Unmarshal(body, &req); err != nil {
		return req, fmt.Sprintf("body is not a ChangeResourceRecordSetsRequest: %v", err)
	}
	if len(req.ChangeBatch.Changes) == 0 {
		return req, "a change batch without changes"
	}
	return req, ""
}

type changeInfoXML struct {
	ID          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
	Comment     string `xml:"Comment,omitempty"`
}

type changeResponse struct {
	XMLName    xml.Name      `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ChangeResourceRecordSetsResponse"`
	ChangeInfo changeInfoXML `xml:"ChangeInfo"`
}

type getChangeResponse struct {
	XMLName    xml.Name      `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetChangeResponse"`
	ChangeInfo changeInfoXML `xml:"ChangeInfo"`
}

func sameValues(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// change validates the batch and applies it to a copy of the zone's sets, kept only if every
// change is valid.
func (s *Server) change(id string, req changeRequest) (any, *apiError) {
	z := s.zoneByID(id)
	if z == nil {
		return nil, errf(http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: %s", id)
	}
	sets := slices.Clone(z.sets)
	var msgs []string
	for _, c := range req.ChangeBatch.Changes {
		rs := c.Set
		rs.Name = fqdn(strings.ReplaceAll(rs.Name, `\052`, "*"))
		what := fmt.Sprintf("[name='%s', type='%s']", rs.Name, rs.Type)
		values := rs.values()
		if rs.TTL == nil || len(values) == 0 {
			return nil, errf(http.StatusBadRequest, "InvalidInput", "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]], but found none in Change with [Action=%s, Name=%s, Type=%s, SetIdentifier=null]", c.Action, rs.Name, rs.Type)
		}
		if rs.Name != z.name && !strings.HasSuffix(rs.Name, "."+z.name) {
			msgs = append(msgs, fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", rs.Name, z.name))
			continue
		}
		if m := checkValues(rs); m != "" {
			msgs = append(msgs, m)
			continue
		}
		i := slices.IndexFunc(sets, func(o RecordSet) bool { return o.Name == rs.Name && o.Type == rs.Type })
		set := RecordSet{Name: rs.Name, Type: rs.Type, TTL: *rs.TTL, Values: values}
		switch c.Action {
		case "CREATE", "UPSERT":
			if i >= 0 && c.Action == "CREATE" {
				msgs = append(msgs, fmt.Sprintf("Tried to create resource record set %s but it already exists", what))
				continue
			}
			if j := slices.IndexFunc(sets, func(o RecordSet) bool {
				return o.Name == rs.Name && o.Type != rs.Type && (o.Type == "CNAME" || rs.Type == "CNAME")
			}); j >= 0 {
				msgs = append(msgs, fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet of type %s with the same DNS name already exists in zone %s.", rs.Type, rs.Name, sets[j].Type, z.name))
				continue
			}
			if i >= 0 {
				sets[i] = set
			} else {
				sets = append(sets, set)
			}
		case "DELETE":
			switch {
			case i < 0:
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but it was not found", what))
			case sets[i].TTL != *rs.TTL || !sameValues(sets[i].Values, values):
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but the values provided do not match the current values", what))
			default:
				sets = slices.Delete(sets, i, i+1)
			}
		default:
			return nil, errf(http.StatusBadRequest, "InvalidInput", "Invalid XML ; cvc-enumeration-valid: Value '%s' is not facet-valid with respect to enumeration '[CREATE, DELETE, UPSERT]'.", c.Action)
		}
	}
	if len(msgs) > 0 {
		e := errf(http.StatusBadRequest, "InvalidChangeBatch", "%s", msgs[0])
		e.messages = msgs
		return nil, e
	}
	z.sets = sets
	s.nextID++
	ci := &changeInfo{id: fmt.Sprintf("C%020d", s.nextID), submitted: time.Now().UTC(), comment: req.ChangeBatch.Comment}
	s.changes[ci.id] = ci
	return changeResponse{ChangeInfo: changeInfoXML{ID: "/change/" + ci.id, Status: "PENDING", SubmittedAt: ci.submitted.Format(time.RFC3339), Comment: ci.comment}}, nil
}

// checkValues applies Route 53's checks of record data; a message says what is wrong.
func checkValues(rs rrsXML) string {
	if *rs.TTL < 0 || *rs.TTL > 2147483647 {
		return fmt.Sprintf("Invalid TTL %d", *rs.TTL)
	}
	seen := map[string]bool{}
	values := rs.values()
	for _, v := range values {
		if seen[v] {
			return fmt.Sprintf("[Duplicate Resource Record: '%s']", v)
		}
		seen[v] = true
		switch rs.Type {
		case "A", "AAAA":
			a, err := netip.ParseAddr(v)
			if err != nil || a.Is4() != (rs.Type == "A") {
				code := map[bool]string{true: "ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address)", false: "AAAARRDATAIllegalIPv6Address (Value is not a valid IPv6 address)"}[rs.Type == "A"]
				return fmt.Sprintf("[Invalid Resource Record: 'FATAL problem: %s encountered with '%s'']", code, v)
			}
		case "CNAME":
			if len(values) > 1 {
				return "[RRSet of type CNAME with DNS name " + rs.Name + " has more than one resource record]"
			}
		case "TXT":
			if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
				return fmt.Sprintf("[Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '%s'']", v)
			}
		default:
			return fmt.Sprintf("r53fake does not handle type %s", rs.Type)
		}
	}
	return ""
}

func (s *Server) getChange(id string) (any, *apiError) {
	ci := s.changes[id]
	if ci == nil {
		return nil, errf(http.StatusNotFound, "NoSuchChange", "A change with the specified change ID does not exist.")
	}
	ci.polls++
	status := "INSYNC"
	if ci.polls <= s.pending {
		status = "PENDING"
	}
	return getChangeResponse{ChangeInfo: changeInfoXML{ID: "/change/" + ci.id, Status: status, SubmittedAt: ci.submitted.Format(time.RFC3339), Comment: ci.comment}}, nil
}

// redact shows the credential scope of a SigV4 header, never its signature.
func redact(auth string) string {
	if i := strings.Index(auth, "Signature="); i >= 0 {
		return auth[:i] + "Signature=[redacted]"
	}
	if len(auth) > 20 {
		return auth[:20] + "..."
	}
	return auth
}
