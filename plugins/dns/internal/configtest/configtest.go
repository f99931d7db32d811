// Package configtest checks the errors of the dns providers' Config.Validate in their tests.
package configtest

import (
	"errors"
	"testing"

	"github.com/drover-dev/drover/plugins/config"
)

// WantAttr fails t unless err is nil where attr is empty, and otherwise a *config.AttrError about
// attr. call names what returned err in the message, such as "Validate({Zone:x})".
func WantAttr(t testing.TB, call string, err error, attr string) {
	t.Helper()
	var ae *config.AttrError
	switch {
	case attr == "" && err != nil:
		t.Errorf("%s = %v, want nil", call, err)
	case attr != "" && (!errors.As(err, &ae) || ae.Attr != attr):
		t.Errorf("%s = %v, want an error about %s", call, err, attr)
	}
}
