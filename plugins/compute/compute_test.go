package compute_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/compute"
)

func TestSelector(t *testing.T) {
	labels := map[string]string{"role": "web", "color": "blue"}
	for sel, want := range map[string]bool{
		"":                     true,
		"role=web":             true,
		"role=web,color=blue":  true,
		"role=web,color=green": false,
		"role=db":              false,
		"rollout=r1":           false,
		"role=web,rollout=":    false, // a label that must exist, even empty
	} {
		s := compute.Selector{}
		for kv := range strings.SplitSeq(sel, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				s[k] = v
			}
		}
		if got := s.Matches(labels); got != want {
			t.Errorf("Selector(%s).Matches(%v) = %v, want %v", sel, labels, got, want)
		}
	}
	if !compute.Selector(nil).Matches(nil) {
		t.Error("the nil selector does not match an instance without labels")
	}
}

func TestSpecValidate(t *testing.T) {
	ok := compute.Spec{Token: "t", Name: "web-0", Labels: map[string]string{"role": "web"}, Ports: []int{1, 80, 65535}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v): %v", ok, err)
	}
	for name, s := range map[string]compute.Spec{
		"empty token": {Name: "web-0"},
		"port 0":      {Token: "t", Name: "web-0", Ports: []int{0}},
		"port 65536":  {Token: "t", Name: "web-0", Ports: []int{65536}},
		"empty label": {Token: "t", Name: "web-0", Labels: map[string]string{"": "x"}},
	} {
		err := s.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "compute: ") || !strings.Contains(err.Error(), "web-0") {
			t.Errorf("Validate with %s: %v, want an error naming the spec", name, err)
		}
	}
}

func TestClone(t *testing.T) {
	s := compute.Spec{Labels: map[string]string{"a": "1"}, Ports: []int{80}, UserData: []byte("x")}
	c := s.Clone()
	c.Labels["a"], c.Ports[0], c.UserData[0] = "2", 81, 'y'
	if s.Labels["a"] != "1" || s.Ports[0] != 80 || s.UserData[0] != 'x' {
		t.Fatalf("Spec.Clone shares memory: %+v", s)
	}
	in := compute.Instance{Labels: map[string]string{"a": "1"}, Ports: []int{80}}
	ic := in.Clone()
	ic.Labels["a"], ic.Ports[0] = "2", 81
	if in.Labels["a"] != "1" || in.Ports[0] != 80 {
		t.Fatalf("Instance.Clone shares memory: %+v", in)
	}
}

func TestEndpoint(t *testing.T) {
	in := compute.Instance{Address: netip.MustParseAddr("127.0.10.2")}
	if got := in.Endpoint(80); got != netip.MustParseAddrPort("127.0.10.2:80") {
		t.Fatalf("Endpoint(80) = %v", got)
	}
}

func TestRefuseCloudRole(t *testing.T) {
	if err := (compute.Spec{Name: "web"}).RefuseCloudRole("qemu"); err != nil {
		t.Errorf("a spec without a cloud role: %v", err)
	}
	err := (compute.Spec{Name: "vault", CloudRole: "arn:aws:iam::1:role/vault"}).RefuseCloudRole("qemu")
	if err == nil || !strings.HasPrefix(err.Error(), "qemu: ") || !strings.Contains(err.Error(), "arn:aws:iam::1:role/vault") {
		t.Errorf("RefuseCloudRole = %v, want an error prefixed qemu: naming the role", err)
	}
}
