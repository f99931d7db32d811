package rrconv

import (
	"errors"
	"slices"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/dns"
)

func TestCheck(t *testing.T) {
	k, err := Check("c", "lab.example.", "WWW.Lab.Example", "aaaa")
	if err != nil || k != (Key{Name: "www.lab.example.", Type: "AAAA", RRType: mdns.TypeAAAA}) {
		t.Fatalf("Check = %+v, %v", k, err)
	}
	for _, name := range []string{"lab.example.", "a.b.lab.example."} {
		if _, err := Check("c", "lab.example.", name, "A"); err != nil {
			t.Errorf("Check(%s): %v", name, err)
		}
	}
	for _, name := range []string{"notlab.example.", "example.", "a..lab.example."} {
		if _, err := Check("c", "lab.example.", name, "A"); err == nil {
			t.Errorf("Check(%s): no error", name)
		}
	}
	if _, err := Check("c", ".", "anything.invalid.", "TXT"); err != nil {
		t.Errorf("Check under the root: %v", err)
	}
	if _, err := Check("c", "lab.example.", "www.lab.example.", "MX"); !errors.Is(err, dns.ErrUnsupportedType) {
		t.Errorf("Check of MX: %v, want ErrUnsupportedType", err)
	}
}

func TestCanonical(t *testing.T) {
	for _, tt := range []struct {
		typ  string
		in   []string
		want []string
	}{
		{"A", []string{"192.0.2.2", "192.0.2.1", "192.0.2.2"}, []string{"192.0.2.1", "192.0.2.2"}},
		{"AAAA", []string{"2001:DB8:0:0::1"}, []string{"2001:db8::1"}},
		{"CNAME", []string{"Target.Lab.Example."}, []string{"target.lab.example."}},
		{"TXT", []string{`"blue green"`}, []string{`"blue green"`}},
		{"A", nil, []string{}},
	} {
		k, err := Check("c", "lab.example.", "www.lab.example.", tt.typ)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Canonical("c", k, tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Canonical(%s %q) = %q, %v; want %q", tt.typ, tt.in, got, err, tt.want)
		}
	}
	k, _ := Check("c", "lab.example.", "www.lab.example.", "A")
	for _, bad := range []string{"2001:db8::1", "not-an-address", ""} {
		if _, err := Canonical("c", k, []string{bad}); err == nil {
			t.Errorf("Canonical(A %q): no error", bad)
		}
	}
}

func TestSet(t *testing.T) {
	k, _ := Check("c", "lab.example.", "www.lab.example.", "A")
	var rrs []mdns.RR
	for _, s := range []string{
		"WWW.lab.example. 60 IN A 192.0.2.2",
		"www.lab.example. 60 IN A 192.0.2.1",
		"www.lab.example. 60 IN AAAA 2001:db8::1",
		"other.lab.example. 60 IN A 192.0.2.9",
	} {
		rr, err := mdns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	got := Set(k, rrs)
	want := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1", "192.0.2.2"}}
	if !got.Equal(want) {
		t.Fatalf("Set = %v, want %v", got, want)
	}
}
