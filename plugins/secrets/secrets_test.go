package secrets_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets"
)

const value = "s3cr3t-hvs.CAESIvalue"

func TestSecretNeverPrints(t *testing.T) {
	s := secrets.Secret(value)
	w := secrets.Wrapped{Token: s, Accessor: "acc", CreationPath: "auth/approle/role/drover-web/secret-id"}
	type holder struct {
		Token  secrets.Secret
		Tokens []secrets.Secret
		ByName map[string]secrets.Secret
		Ptr    *secrets.Secret
	}
	h := holder{Token: s, Tokens: []secrets.Secret{s, s}, ByName: map[string]secrets.Secret{"a": s}, Ptr: &s}

	var outs []string
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s", "%-20v", "%T"} {
		for _, arg := range []any{s, &s, w, &w, h, []secrets.Secret{s}} {
			outs = append(outs, fmt.Sprintf(verb, arg))
		}
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s, w), s.String(), s.GoString())
	for _, v := range []any{s, w, h} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j))
	}
	err := fmt.Errorf("outer: %w", fmt.Errorf("inner %v %s: %w", s, w, errors.New("cause")))
	outs = append(outs, err.Error(), fmt.Sprintf("%+v", err))

	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "token", s, "wrapped", w)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "token", s, "wrapped", w)
	outs = append(outs, buf.String())

	for _, out := range outs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) || strings.Contains(out, "s3cr3t") {
			t.Errorf("value leaked: %s", out)
		}
	}
	if got := fmt.Sprintf("%v|%s|%#v|%q", s, s, s, s); got != "[REDACTED]|[REDACTED]|[REDACTED]|[REDACTED]" {
		t.Errorf("got %s", got)
	}
	if j, _ := json.Marshal(s); string(j) != `"[REDACTED]"` {
		t.Errorf("json: %s", j)
	}
	if !strings.Contains(fmt.Sprintf("%+v", w), "Token:[REDACTED]") {
		t.Errorf("%%+v of Wrapped: %+v", w)
	}
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
}
