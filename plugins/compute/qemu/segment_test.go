package qemu

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/config"
)

// A VM's segment address is its loopback address moved into the segment; its NIC's MAC follows
// from it; the multicast group differs between labs; a lab without a segment gets no second NIC.
func TestSegment(t *testing.T) {
	p := newTest(t, func(c *Config) { c.Network = "127.0.78.0/24"; c.Segment = "10.77.0.0/24" })
	seg := p.segmentOf(netip.MustParseAddr("127.0.78.5"))
	if seg != netip.MustParsePrefix("10.77.0.5/24") {
		t.Fatalf("segment address of 127.0.78.5: %s, want 10.77.0.5/24", seg)
	}
	if got := p.instance(&record{ID: "vm-0123456789ab", Segment: seg}).Private; got != seg.Addr() {
		t.Errorf("instance's private address %s, want %s", got, seg.Addr())
	}
	r := &record{ID: "vm-0123456789ab", Address: netip.MustParseAddr("127.0.78.5"), Segment: seg, Ports: []int{8200}}
	args := strings.Join(p.args(r, p.instanceDir(r.ID), "tcg"), " ")
	g := p.segmentGroup()
	for _, want := range []string{
		"-netdev socket,id=n1,mcast=" + g.String() + ",localaddr=127.0.0.1",
		"-device virtio-net-pci,netdev=n1,mac=52:54:00:4d:00:05",
		"-fw_cfg name=opt/drover/segment,string=10.77.0.5/24 52:54:00:4d:00:05",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q:\n%s", want, args)
		}
	}
	if !netip.MustParsePrefix("239.255.0.0/16").Contains(g.Addr()) || g.Port() < 20000 || g.Port() >= 60000 {
		t.Errorf("segment group %s: want 239.255.0.0/16, port 20000-59999", g)
	}
	other := newTest(t, func(c *Config) { c.Network = "127.0.78.0/24"; c.Segment = "10.77.0.0/24" })
	if other.segmentGroup() == g {
		t.Errorf("two labs share the segment group %s", g)
	}

	none := newTest(t)
	if s := none.segmentOf(netip.MustParseAddr("127.0.10.2")); s.IsValid() {
		t.Errorf("a lab without a segment gave %s", s)
	}
	r.Segment = netip.Prefix{}
	if args := strings.Join(none.args(r, none.instanceDir(r.ID), "tcg"), " "); strings.Contains(args, "n1") || strings.Contains(args, "segment") {
		t.Errorf("args of a lab without a segment:\n%s", args)
	}
}

func TestSegmentValidate(t *testing.T) {
	for _, tc := range []struct{ network, segment, want string }{
		{"127.0.10.0/24", "192.0.2.0/24", "must be a private IPv4 range"},
		{"127.0.10.0/24", "10.77.0.1/24", "must be a private IPv4 range"},
		{"127.0.10.0/24", "fd00::/64", "must be a private IPv4 range"},
		{"127.0.10.0/24", "10.77.0.0", "must be a private IPv4 range"},
		{"127.0.10.0/24", "10.77.0.0/28", "smaller than network 127.0.10.0/24"},
	} {
		cfg := NewDefaultConfig(config.OS())
		cfg.Network, cfg.Segment = tc.network, tc.segment
		err := cfg.Validate()
		var ae *config.AttrError
		if !errors.As(err, &ae) || ae.Attribute() != "segment" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("segment %q: %v, want %q on segment", tc.segment, err, tc.want)
		}
	}
	cfg := NewDefaultConfig(config.OS())
	cfg.Segment = "172.16.0.0/16"
	if err := cfg.Validate(); err != nil {
		t.Errorf("segment 172.16.0.0/16: %v", err)
	}
}
