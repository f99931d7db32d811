package zonefile_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/zonefile"
)

// countRRs parses a zone file and counts its records by owner and type; ok is false when it does
// not parse.
func countRRs(path string) (map[string]int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	out := map[string]int{}
	zp := mdns.NewZoneParser(f, "lab.example.", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out[strings.ToLower(rr.Header().Name)+" "+mdns.TypeToString[rr.Header().Rrtype]]++
	}
	return out, zp.Err() == nil
}

// FuzzReplaceSet feeds the zone-file writer arbitrary changes (name, type, TTL, values): each is
// refused, or the file it writes parses, holds exactly the set asked for, and still holds every
// other record as it was: no value can smuggle in another record or break the file.
func FuzzReplaceSet(f *testing.F) {
	f.Add("www", "A", uint32(60), "192.0.2.7\n192.0.2.8")
	f.Add("www.lab.example.", "AAAA", uint32(300), "2001:db8::1")
	f.Add("txt", "TXT", uint32(60), `"v=spf1 -all"`)
	f.Add("www", "A", uint32(60), "192.0.2.7\nevil 60 IN A 10.0.0.66")
	f.Add("www\nevil", "A", uint32(60), "192.0.2.7")
	f.Add("alias", "CNAME", uint32(0), "www.lab.example.")
	f.Add("www", "TXT", uint32(60), "\"a\" ; comment\n$INCLUDE /etc/passwd")
	dir := f.TempDir()
	path := filepath.Join(dir, "lab.example.zone")
	p, err := zonefile.New(&zonefile.Config{Zone: "lab.example.", Path: "lab.example.zone"}, dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, typ string, ttl uint32, values string) {
		if err := os.WriteFile(path, []byte(testZone), 0o644); err != nil {
			t.Fatal(err)
		}
		before, _ := countRRs(path)
		want := dns.RecordSet{Name: name, Type: typ, TTL: ttl, Values: strings.Split(values, "\n")}
		if values == "" {
			want.Values = nil
		}
		if err := p.ReplaceSet(t.Context(), want, nil); err != nil {
			return
		}
		after, ok := countRRs(path)
		if !ok {
			b, _ := os.ReadFile(path)
			t.Fatalf("the zone file written for %+v does not parse:\n%s", want, b)
		}
		got, err := p.Set(t.Context(), name, typ)
		if err != nil {
			t.Fatalf("Set after ReplaceSet(%+v): %v", want, err)
		}
		key := got.Name + " " + got.Type
		for k, n := range before {
			if k != key && !strings.HasSuffix(k, " SOA") && after[k] != n {
				t.Fatalf("ReplaceSet(%+v) changed %s: %d records, was %d", want, k, after[k], n)
			}
		}
		for k := range after {
			if _, was := before[k]; !was && k != key {
				t.Fatalf("ReplaceSet(%+v) added records %s", want, k)
			}
		}
		if after[key] != len(got.Values) || (len(got.Values) == 0) != (len(want.Values) == 0) {
			t.Fatalf("ReplaceSet(%+v): the file holds %d records of %s, Set reads %v", want, after[key], key, got.Values)
		}
		if len(got.Values) > 0 && slices.Contains(got.Values, "") {
			t.Fatalf("an empty value was written: %v", got.Values)
		}
	})
}
