package dolab

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func call(t *testing.T, c *Cloud, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, c.URL()+strings.TrimPrefix(path, "/"), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	if res.Header.Get("RateLimit-Limit") == "" || res.Header.Get("RateLimit-Remaining") == "" {
		t.Errorf("%s %s: no rate limit headers", method, path)
	}
	return res.StatusCode, out
}

// TestPagination: links.pages has next and last on the first page, first and prev on the last,
// as absolute URLs keeping the filter; meta.total counts all.
func TestPagination(t *testing.T) {
	c := New(t, Options{})
	img := c.AddImage("web", make([]byte, 1<<20))
	for i := range 5 {
		body := fmt.Sprintf(`{"name":"web-%d","region":%q,"size":"s-1vcpu-1gb","image":%d,"tags":["web"]}`, i, c.Region(), img)
		if code, out := call(t, c, http.MethodPost, "/v2/droplets", c.Token(), body); code != http.StatusAccepted {
			t.Fatalf("create: %d %v", code, out)
		}
	}
	code, out := call(t, c, http.MethodGet, "/v2/droplets?tag_name=web&per_page=2", c.Token(), "")
	pages := out["links"].(map[string]any)["pages"].(map[string]any)
	if code != 200 || len(out["droplets"].([]any)) != 2 || out["meta"].(map[string]any)["total"].(float64) != 5 ||
		!strings.Contains(pages["next"].(string), "page=2") || !strings.Contains(pages["last"].(string), "page=3") ||
		!strings.Contains(pages["next"].(string), "tag_name=web") || pages["prev"] != nil {
		t.Fatalf("first page: %d %v", code, out)
	}
	_, out = call(t, c, http.MethodGet, "/v2/droplets?tag_name=web&per_page=2&page=3", c.Token(), "")
	pages = out["links"].(map[string]any)["pages"].(map[string]any)
	if len(out["droplets"].([]any)) != 1 || pages["next"] != nil || !strings.Contains(pages["prev"].(string), "page=2") {
		t.Fatalf("last page: %v", out)
	}
	if code, out := call(t, c, http.MethodGet, "/v2/droplets", "wrong", ""); code != http.StatusUnauthorized || out["id"] != "unauthorized" {
		t.Errorf("a wrong token: %d %v", code, out)
	}
}

// TestMetadataDocument: the droplet's /metadata/v1.json has what a custom image configures its
// network from, and the user-data path serves the create's user_data.
func TestMetadataDocument(t *testing.T) {
	c := New(t, Options{})
	img := c.AddImage("web", make([]byte, 1<<20))
	body := fmt.Sprintf(`{"name":"web-0","region":%q,"size":"s-1vcpu-1gb","image":%d,"user_data":"hello"}`, c.Region(), img)
	if code, out := call(t, c, http.MethodPost, "/v2/droplets", c.Token(), body); code != http.StatusAccepted {
		t.Fatalf("create: %d %v", code, out)
	}
	d := c.Droplets()[0]
	srv := httptest.NewServer(c.Metadata(d.ID))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metadata/v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		DropletID  int `json:"droplet_id"`
		Interfaces struct {
			Public []struct {
				IPv4 map[string]string `json:"ipv4"`
				MAC  string            `json:"mac"`
			} `json:"public"`
		} `json:"interfaces"`
		DNS      struct{ Nameservers []string } `json:"dns"`
		Features map[string]bool                `json:"features"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	pub := doc.Interfaces.Public
	if doc.DropletID != d.ID || len(pub) != 1 || pub[0].IPv4["ip_address"] != d.Guest.String() || pub[0].IPv4["netmask"] != "255.255.0.0" ||
		pub[0].IPv4["gateway"] != "169.254.0.1" || pub[0].MAC == "" || len(doc.DNS.Nameservers) == 0 || doc.Features["dhcp_enabled"] {
		t.Errorf("metadata %+v", doc)
	}
	res, err = http.Get(srv.URL + "/metadata/v1/user-data")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "hello" {
		t.Errorf("user-data %q", b)
	}
}
