package dofake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what Errorf says, to see the fake refuse a bad client.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func do(t *testing.T, s *Server, method, path, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(s.URL, "/")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: body %s is not JSON: %v", method, path, data, err)
		}
	}
	return res.StatusCode, res.Header, out
}

func TestErrorsAndRateLimitHeaders(t *testing.T) {
	s := New(t, "tok")
	s.AddDomain("example.com")
	status, h, body := do(t, s, "GET", "/v2/domains/example.com/records", "", "")
	if status != 401 || body["id"] != "unauthorized" || body["message"] == "" {
		t.Errorf("no token: %d %v, want 401 with id unauthorized and a message", status, body)
	}
	for _, k := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		if h.Get(k) == "" {
			t.Errorf("answer without %s", k)
		}
	}
	status, _, body = do(t, s, "GET", "/v2/domains/other.com/records", "tok", "")
	if status != 404 || body["id"] != "not_found" {
		t.Errorf("unknown domain: %d %v, want 404 not_found", status, body)
	}
	status, _, body = do(t, s, "POST", "/v2/domains/example.com/records", "tok", `{"type":"A","name":"www","data":"192.0.2.1","ttl":10}`)
	if status != 422 || body["id"] != "unprocessable_entity" {
		t.Errorf("TTL 10: %d %v, want 422 unprocessable_entity", status, body)
	}
	status, _, body = do(t, s, "POST", "/v2/domains/example.com/records", "tok", `{"type":"CNAME","name":"www","data":"example.org"}`)
	if status != 422 || !strings.Contains(fmt.Sprint(body["message"]), "end with a dot") {
		t.Errorf("CNAME without its final dot: %d %v, want 422", status, body)
	}
}

func TestPagesAndRecords(t *testing.T) {
	s := New(t, "tok")
	s.AddDomain("example.com") // 3 NS records
	status, _, body := do(t, s, "POST", "/v2/domains/example.com/records", "tok", `{"type":"CNAME","name":"www","data":"example.org.","priority":null,"port":null,"weight":null,"flags":null,"tag":null}`)
	rec, _ := body["domain_record"].(map[string]any)
	if status != 201 || rec["data"] != "example.org" || rec["ttl"] != float64(1800) || rec["name"] != "www" {
		t.Fatalf("create: %d %v, want 201 with the target without its dot and TTL 1800", status, body)
	}
	status, _, body = do(t, s, "GET", "/v2/domains/example.com/records?per_page=2", "tok", "")
	links, _ := body["links"].(map[string]any)
	pages, _ := links["pages"].(map[string]any)
	meta, _ := body["meta"].(map[string]any)
	if status != 200 || len(body["domain_records"].([]any)) != 2 || meta["total"] != float64(4) ||
		!strings.HasSuffix(fmt.Sprint(pages["next"]), "page=2&per_page=2") || pages["prev"] != nil {
		t.Fatalf("page 1: %d %v, want 2 of 4 records with a next link and no prev", status, body)
	}
	_, _, body = do(t, s, "GET", "/v2/domains/example.com/records?page=2&per_page=2", "tok", "")
	pages = body["links"].(map[string]any)["pages"].(map[string]any)
	if pages["next"] != nil || pages["first"] == nil || pages["prev"] == nil {
		t.Fatalf("page 2: %v, want first and prev links and no next", body)
	}
	_, _, body = do(t, s, "GET", "/v2/domains/example.com/records?name=www.example.com&type=CNAME", "tok", "")
	if recs := body["domain_records"].([]any); len(recs) != 1 || len(body["links"].(map[string]any)) != 0 {
		t.Fatalf("filtered: %v, want the CNAME alone and empty links", body)
	}
}

func TestBadClientFailsTheTest(t *testing.T) {
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/v2/domains/example.com/records?name=www", "", "not a fully qualified name"},
		{"GET", "/v2/domains/example.com/records?per_page=500", "", "per_page"},
		{"POST", "/v2/domains/example.com/records", `{"type":"A","name":"www","data":"192.0.2.1","proxied":true}`, "unknown field"},
		{"POST", "/v2/domains/example.com/records", `{"type":"A","name":"www.example.com","data":"192.0.2.1"}`, "relative"},
		{"PATCH", "/v2/domains/example.com/records/ID", `{}`, "unexpected method"},
	} {
		r := &recorder{TB: t}
		s := New(r, "tok")
		s.AddDomain("example.com")
		path := strings.Replace(tc.path, "ID", fmt.Sprint(s.Records("example.com")[0].ID), 1)
		status, _, _ := do(t, s, tc.method, path, "tok", tc.body)
		if status != 400 || len(r.errs) != 1 || !strings.Contains(r.errs[0], tc.want) {
			t.Errorf("%s %s %s: %d, test errors %q; want 400 and one error containing %q", tc.method, tc.path, tc.body, status, r.errs, tc.want)
		}
	}
}
