package digitalocean_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/dns"
)

func TestTTLLimits(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	n := len(s.Requests())
	if err := p.ReplaceSet(t.Context(), set(10, "192.0.2.1"), nil); err == nil || !strings.Contains(err.Error(), "TTL 10 is under DigitalOcean's minimum of 30 seconds") {
		t.Fatalf("ReplaceSet with TTL 10: %v, want an error naming the minimum", err)
	}
	if len(s.Requests()) != n {
		t.Fatal("a TTL under the minimum reached the API")
	}
	if err := p.ReplaceSet(t.Context(), set(0, "192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil || got.TTL != 1800 {
		t.Fatalf("Set after a replace with TTL 0 = %v, %v; want DigitalOcean's default TTL 1800", got, err)
	}
}

func TestApexCNAMEAndTXT(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	ctx := t.Context()
	apex := dns.RecordSet{Name: "lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}
	if err := p.ReplaceSet(ctx, apex, nil); err != nil {
		t.Fatal(err)
	}
	if r := records(s, "@", "A"); len(r) != 1 {
		t.Fatalf("apex records %v, want one named @", r)
	}
	if got, err := p.Set(ctx, "LAB.example", "a"); err != nil || !got.Equal(apex) {
		t.Fatalf("Set of the apex = %v, %v; want %v", got, err, apex)
	}
	// The NS records DigitalOcean puts at the apex are not drover's business.
	if got, err := p.Set(ctx, "lab.example.", "AAAA"); err != nil || !got.Empty() {
		t.Fatalf("Set of the apex's AAAA = %v, %v", got, err)
	}

	cname := dns.RecordSet{Name: "alias.lab.example.", Type: "CNAME", TTL: 60, Values: []string{"WWW.lab.example."}}
	if err := p.ReplaceSet(ctx, cname, nil); err != nil {
		t.Fatal(err)
	}
	if r := records(s, "alias", "CNAME"); r["www.lab.example"].TTL != 60 {
		t.Fatalf("CNAME records %v, want www.lab.example as the API keeps it", r)
	}
	cname.Values = []string{"www.lab.example."}
	if got, err := p.Set(ctx, cname.Name, "cname"); err != nil || !got.Equal(cname) {
		t.Fatalf("Set = %v, %v; want %v", got, err, cname)
	}
	s.ReplaceSet(domain, "alias2", "CNAME", 60, "@")
	if got, err := p.Set(ctx, "alias2.lab.example.", "CNAME"); err != nil || strings.Join(got.Values, ",") != "lab.example." {
		t.Fatalf("Set of a CNAME to @ = %v, %v; want the apex", got, err)
	}
	two := cname
	two.Values = []string{"a.example.", "b.example."}
	if err := p.ReplaceSet(ctx, two, nil); err == nil {
		t.Fatal("a CNAME set with two values: no error")
	}

	txt := dns.RecordSet{Name: "_acme.lab.example.", Type: "TXT", TTL: 60, Values: []string{`"v=1 a"`, `"say \"hi\""`, `"split" " in two"`, `"back\\slash \065"`}}
	if err := p.ReplaceSet(ctx, txt, nil); err != nil {
		t.Fatal(err)
	}
	r := records(s, "_acme", "TXT")
	for _, d := range []string{"v=1 a", `say "hi"`, "split in two", `back\slash A`} {
		if _, ok := r[d]; !ok {
			t.Errorf("TXT records %v: no record with data %q", r, d)
		}
	}
	want := txt
	want.Values = []string{`"v=1 a"`, `"say \"hi\""`, `"split in two"`, `"back\\slash A"`}
	if got, err := p.Set(ctx, txt.Name, "TXT"); err != nil || !got.Equal(want) {
		t.Fatalf("Set = %v, %v; want %v", got, err, want)
	}
	n := len(s.Requests())
	if err := p.ReplaceSet(ctx, txt, &want); err != nil {
		t.Fatal(err)
	}
	if got, _ := writes(s, n); len(got) != 0 {
		t.Fatalf("the same TXT set written with two strings sent %v", got)
	}

	if _, err := p.Set(ctx, "www.lab.example.", "MX"); !errors.Is(err, dns.ErrUnsupportedType) {
		t.Fatalf("Set of MX: %v, want ErrUnsupportedType", err)
	}
	if err := p.ReplaceSet(ctx, set(60, "2001:db8::1"), nil); err == nil || !strings.Contains(err.Error(), "2001:db8::1") {
		t.Fatalf("an IPv6 address in an A set: %v, want an error naming it", err)
	}
	if _, err := p.Set(ctx, `we\ird.lab.example.`, "A"); err == nil {
		t.Fatal("Set of a name DigitalOcean cannot hold: no error")
	}
}

func TestIPv6Canonical(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	w := dns.RecordSet{Name: "www.lab.example.", Type: "AAAA", TTL: 60, Values: []string{"2001:DB8:0:0::1"}}
	if err := p.ReplaceSet(t.Context(), w, nil); err != nil {
		t.Fatal(err)
	}
	n := len(s.Requests())
	if err := p.ReplaceSet(t.Context(), w, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := writes(s, n); len(got) != 0 {
		t.Fatalf("the same set written differently sent %v", got)
	}
}
