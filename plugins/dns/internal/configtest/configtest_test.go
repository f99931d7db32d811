package configtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/config"
)

// recorder is a testing.TB that keeps what Errorf says.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestWantAttr(t *testing.T) {
	zone := config.Errorf("zone", "bad")
	for _, tc := range []struct {
		err  error
		attr string
		want string // what the failure says; empty: no failure
	}{
		{nil, "", ""},
		{zone, "zone", ""},
		{fmt.Errorf("wrapped: %w", zone), "zone", ""},
		{zone, "", "Validate(x) = zone: bad, want nil"},
		{nil, "zone", "Validate(x) = <nil>, want an error about zone"},
		{zone, "api_url", "Validate(x) = zone: bad, want an error about api_url"},
		{errors.New("zone: plain"), "zone", "Validate(x) = zone: plain, want an error about zone"},
	} {
		r := &recorder{TB: t}
		WantAttr(r, "Validate(x)", tc.err, tc.attr)
		if got := strings.Join(r.errs, "\n"); got != tc.want {
			t.Errorf("WantAttr(%v, %q) failed with %q, want %q", tc.err, tc.attr, got, tc.want)
		}
	}
}
