package dofake

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, 1<<20))
}

// list answers GET /v2/domains/{domain}/records?type=&name=&page=&per_page=.
func (s *Server) list(r *http.Request, domain string, recs []Record) answer {
	q := r.URL.Query()
	for k := range q {
		if k != "type" && k != "name" && k != "page" && k != "per_page" {
			return s.bad("unknown query parameter %q", k)
		}
	}
	page, perPage := 1, 20
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return s.bad("page %q: want a number from 1", v)
		}
		page = n
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return s.bad("per_page %q: want 1 to 200", v)
		}
		perPage = n
	}
	perPage = min(perPage, s.maxPerPage)
	name, typ := q.Get("name"), q.Get("type")
	if name != "" && name != domain && !strings.HasSuffix(name, "."+domain) {
		// The reference: "name must be a fully qualified record name".
		return s.bad("name filter %q is not a fully qualified name in %s", name, domain)
	}
	var match []Record
	for _, rec := range recs {
		if typ != "" && rec.Type != typ {
			continue
		}
		if name != "" && fqdn(domain, rec.Name) != strings.ToLower(name) {
			continue
		}
		match = append(match, rec)
	}
	last := max((len(match)+perPage-1)/perPage, 1)
	out := []any{}
	for i := (page - 1) * perPage; i < min(page*perPage, len(match)); i++ {
		out = append(out, recordJSON(match[i]))
	}
	pageURL := func(n int) string {
		qq := r.URL.Query()
		qq.Set("page", strconv.Itoa(n))
		return "http://" + r.Host + r.URL.Path + "?" + qq.Encode()
	}
	pages := map[string]string{}
	if page > 1 {
		pages["first"], pages["prev"] = pageURL(1), pageURL(page-1)
	}
	if page < last {
		pages["next"], pages["last"] = pageURL(page+1), pageURL(last)
	}
	links := map[string]any{}
	if len(pages) > 0 {
		links["pages"] = pages
	}
	return answer{http.StatusOK, map[string]any{"domain_records": out, "links": links, "meta": map[string]any{"total": len(match)}}}
}

func fqdn(domain, name string) string {
	if name == "@" {
		return domain
	}
	return name + "." + domain
}

// recordBody is a record as POST and PUT take it: the domain_record model's writable fields.
type recordBody struct {
	Type     *string `json:"type"`
	Name     *string `json:"name"`
	Data     *string `json:"data"`
	Priority *int    `json:"priority"`
	Port     *int    `json:"port"`
	TTL      *int    `json:"ttl"`
	Weight   *int    `json:"weight"`
	Flags    *int    `json:"flags"`
	Tag      *string `json:"tag"`
}

func (s *Server) decode(r *http.Request, body []byte) (recordBody, *answer) {
	var rb recordBody
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		a := s.bad("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		return rb, &a
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rb); err != nil {
		a := s.bad("%s %s: body %s: %v", r.Method, r.URL.Path, body, err)
		return rb, &a
	}
	for _, v := range []*int{rb.Priority, rb.Port, rb.Weight, rb.Flags} {
		if v != nil && *v != 0 {
			a := unprocessable("Priority, port, weight and flags are only used by MX, SRV and CAA records.")
			return rb, &a
		}
	}
	return rb, nil
}

func unprocessable(msg string) answer {
	return errorAnswer(http.StatusUnprocessableEntity, "unprocessable_entity", msg)
}

// check validates the record a write would leave, and returns it with its data as the API keeps
// it; a non-nil answer refuses the write.
func (s *Server) check(domain string, rec Record) (Record, *answer) {
	switch rec.Type {
	case "A", "AAAA", "CNAME", "TXT":
	default:
		a := s.bad("record type %q: the fake has A, AAAA, CNAME and TXT", rec.Type)
		return rec, &a
	}
	if rec.Name == "" {
		a := unprocessable("Name is required.")
		return rec, &a
	}
	if rec.Name != "@" && (strings.HasSuffix(rec.Name, ".") || rec.Name == domain || strings.HasSuffix(rec.Name, "."+domain)) {
		// Names are relative to the domain; a client that sends a full name makes a record below it.
		a := s.bad("record name %q: want a name relative to %s, or @", rec.Name, domain)
		return rec, &a
	}
	switch rec.Type {
	case "A", "AAAA":
		ip, err := netip.ParseAddr(rec.Data)
		if err != nil || ip.Is4() != (rec.Type == "A") || ip.Zone() != "" {
			a := unprocessable("Data is not a valid " + map[string]string{"A": "IPv4", "AAAA": "IPv6"}[rec.Type] + " address.")
			return rec, &a
		}
	case "CNAME":
		if rec.Data != "@" && !strings.HasSuffix(rec.Data, ".") {
			a := unprocessable("Data needs to end with a dot (.)")
			return rec, &a
		}
		rec.Data = strings.TrimSuffix(rec.Data, ".")
	case "TXT":
		if rec.Data == "" {
			a := unprocessable("Data is required.")
			return rec, &a
		}
	}
	if rec.TTL < 30 {
		a := unprocessable("TTL must be at least 30 seconds.")
		return rec, &a
	}
	return rec, nil
}

// create answers POST /v2/domains/{domain}/records.
func (s *Server) create(r *http.Request, domain string, body []byte) answer {
	rb, a := s.decode(r, body)
	if a != nil {
		return *a
	}
	rec := Record{TTL: 1800}
	if rb.Type != nil {
		rec.Type = *rb.Type
	}
	if rb.Name != nil {
		rec.Name = *rb.Name
	}
	if rb.Data != nil {
		rec.Data = *rb.Data
	}
	if rb.TTL != nil && *rb.TTL != 0 {
		rec.TTL = *rb.TTL
	}
	rec, a = s.check(domain, rec)
	if a != nil {
		return *a
	}
	rec.ID = s.add(domain, rec)
	return answer{http.StatusCreated, map[string]any{"domain_record": recordJSON(rec)}}
}

// update answers PUT /v2/domains/{domain}/records/{id}: the attributes sent replace the record's.
func (s *Server) update(r *http.Request, domain string, i int, body []byte) answer {
	rb, a := s.decode(r, body)
	if a != nil {
		return *a
	}
	rec := s.domains[domain][i]
	if rb.Type != nil && *rb.Type != rec.Type {
		return unprocessable("The type of a record cannot be changed.")
	}
	if rb.Name != nil {
		rec.Name = *rb.Name
	}
	if rb.Data != nil {
		rec.Data = *rb.Data
	} else if rec.Type == "CNAME" && rec.Data != "@" {
		rec.Data += "." // kept as the API returns it; checked as the API takes it
	}
	if rb.TTL != nil && *rb.TTL != 0 {
		rec.TTL = *rb.TTL
	}
	rec, a = s.check(domain, rec)
	if a != nil {
		return *a
	}
	s.domains[domain][i] = rec
	return answer{http.StatusOK, map[string]any{"domain_record": recordJSON(rec)}}
}
