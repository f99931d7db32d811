package bootdata_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

const token = "hvs.CAESIwrapping-token-value"

func sample() bootdata.UserData {
	return bootdata.UserData{
		Version: bootdata.Version,
		Role:    "web",
		Vault: &bootdata.Vault{
			Addr:            "https://vault.example.net:8200",
			RoleID:          "role-id-1",
			WrappedSecretID: secrets.Secret(token),
			CreationPath:    "auth/approle/role/drover-web/secret-id",
		},
		Secrets: []bootdata.SecretFile{
			{Path: "kv/data/web/tls", Field: "key", Name: "tls.key", Owner: "root:www-data", Mode: 0o440},
			{Path: "kv/data/web/db", Name: "db.json"},
		},
	}
}

func TestRoundTripCarriesTheToken(t *testing.T) {
	u := sample()
	b, err := bootdata.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"wrapped_secret_id":"`+token+`"`)) {
		t.Errorf("the user-data does not carry the token: %s", b)
	}
	if !bytes.Contains(b, []byte(`"mode":"0440"`)) {
		t.Errorf("mode not octal: %s", b)
	}
	got, err := bootdata.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, u) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, u)
	}
	if got.Vault.WrappedSecretID.Reveal() != token {
		t.Error("token lost in the round trip")
	}
	// json.Marshal of the value (not only Marshal) is the user-data too.
	j, _ := json.Marshal(u)
	if !bytes.Equal(j, b) {
		t.Errorf("json.Marshal %s, Marshal %s", j, b)
	}
}

func TestPrintingRedactsTheToken(t *testing.T) {
	u := sample()
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("ud", "ud", u, "ptr", &u)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("ud", "ud", u)
	vj, _ := json.Marshal(u.Vault) // the Vault section on its own stays redacted
	outs := []string{
		fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s %q", u, u, u, u, u), fmt.Sprintf("%v %+v", &u, &u),
		fmt.Sprintf("%+v %#v", u.Vault, u.Vault), fmt.Sprint([]bootdata.UserData{u}),
		logs.String(), string(vj),
	}
	for _, o := range outs {
		if strings.Contains(o, token) || strings.Contains(o, "CAES") {
			t.Errorf("token printed: %s", o)
		}
	}
	if !strings.Contains(outs[0], secrets.Redacted) || !strings.Contains(outs[0], "role web") {
		t.Errorf("String: %s", outs[0])
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := bootdata.Marshal(sample())
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	vault := func(m map[string]any) map[string]any { return m["vault"].(map[string]any) }
	secret0 := func(m map[string]any) map[string]any { return m["secrets"].([]any)[0].(map[string]any) }
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"not json", []byte("#cloud-config\n"), "not a JSON object"},
		{"no version", edit(func(m map[string]any) { delete(m, "version") }), "no version"},
		{"version 2", edit(func(m map[string]any) { m["version"] = 2 }), "version 2 is not supported"},
		{"version 0", edit(func(m map[string]any) { m["version"] = 0 }), "version 0 is not supported"},
		{"unknown top field", edit(func(m map[string]any) { m["extra"] = true }), `unknown field "extra"`},
		{"unknown vault field", edit(func(m map[string]any) { vault(m)["token"] = "x" }), `unknown field "token"`},
		{"unknown secret field", edit(func(m map[string]any) { secret0(m)["perm"] = "x" }), `unknown field "perm"`},
		{"trailing data", append(append([]byte{}, good...), []byte(` {}`)...), "data after"},
		{"wrong type", edit(func(m map[string]any) { m["role"] = 7 }), `field "role"`},
		{"bad role", edit(func(m map[string]any) { m["role"] = "Web!" }), "role"},
		{"other role's path", edit(func(m map[string]any) {
			vault(m)["creation_path"] = "auth/approle/role/drover-db/secret-id"
		}), `want "auth/approle/role/drover-web/secret-id"`},
		{"wrap path", edit(func(m map[string]any) { vault(m)["creation_path"] = "sys/wrapping/wrap" }), "creation_path"},
		{"other mount", edit(func(m map[string]any) { vault(m)["auth_mount"] = "approle2" }), "auth/approle2/role/drover-web/secret-id"},
		{"no token", edit(func(m map[string]any) { vault(m)["wrapped_secret_id"] = "" }), "wrapped_secret_id is empty"},
		{"no role id", edit(func(m map[string]any) { vault(m)["role_id"] = "" }), "role_id is empty"},
		{"bad addr", edit(func(m map[string]any) { vault(m)["addr"] = "vault:8200" }), "vault addr"},
		{"addr with path", edit(func(m map[string]any) { vault(m)["addr"] = "https://v/x" }), "vault addr"},
		{"ca not pem", edit(func(m map[string]any) { vault(m)["ca_cert"] = "abc" }), "ca_cert"},
		{"secrets without vault", edit(func(m map[string]any) { delete(m, "vault") }), "secrets without a vault"},
		{"vault without secrets", edit(func(m map[string]any) { delete(m, "secrets") }), "no secrets"},
		{"glob path", edit(func(m map[string]any) { secret0(m)["path"] = "kv/data/web/*" }), "path"},
		{"v1 path", edit(func(m map[string]any) { secret0(m)["path"] = "secret/web/tls" }), "KV version 2"},
		{"dotdot path", edit(func(m map[string]any) { secret0(m)["path"] = "kv/data/../sys" }), "path"},
		{"slash name", edit(func(m map[string]any) { secret0(m)["name"] = "../etc/shadow" }), "plain file name"},
		{"dot name", edit(func(m map[string]any) { secret0(m)["name"] = ".." }), "plain file name"},
		{"dup name", edit(func(m map[string]any) { secret0(m)["name"] = "db.json" }), "used twice"},
		{"bad owner", edit(func(m map[string]any) { secret0(m)["owner"] = "www-data" }), "user:group"},
		{"world readable", edit(func(m map[string]any) { secret0(m)["mode"] = "0644" }), "at most 0640"},
		{"no owner read", edit(func(m map[string]any) { secret0(m)["mode"] = "0040" }), "owner's read"},
		{"mode not octal", edit(func(m map[string]any) { secret0(m)["mode"] = "rw" }), "octal"},
		{"mode number", edit(func(m map[string]any) { secret0(m)["mode"] = 256 }), "octal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := bootdata.Parse(c.in)
			if err == nil {
				t.Fatalf("accepted %s", c.in)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the error quotes the token: %v", err)
			}
		})
	}
	if _, err := bootdata.Parse(bytes.Repeat([]byte(" "), bootdata.MaxSize+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized: %v", err)
	}
}

func TestWithoutVault(t *testing.T) {
	u, err := bootdata.Parse([]byte(`{"version":1,"role":"web"}`))
	if err != nil || u.Vault != nil || u.Role != "web" {
		t.Fatalf("%+v %v", u, err)
	}
	b, err := bootdata.Marshal(u)
	if err != nil || string(b) != `{"version":1,"role":"web"}` {
		t.Errorf("%s %v", b, err)
	}
}

func TestDefaults(t *testing.T) {
	f := bootdata.SecretFile{Path: "kv/data/web/db", Name: "db.json"}
	if f.Perm() != 0o400 || f.OwnerOrDefault() != "root:root" {
		t.Errorf("defaults: %v %s", f.Perm(), f.OwnerOrDefault())
	}
	if got := bootdata.CreationPath("", "web"); got != "auth/approle/role/drover-web/secret-id" {
		t.Error(got)
	}
	if got := bootdata.CreationPath("/team/approle/", "db"); got != "auth/team/approle/role/drover-db/secret-id" {
		t.Error(got)
	}
}

func TestNewVault(t *testing.T) {
	w := secrets.Wrapped{Token: token, CreationPath: "auth/approle/role/drover-web/secret-id", TTL: time.Minute}
	v := bootdata.NewVault("http://127.0.0.1:8200", secrets.RoleRef{RoleID: "rid", Mount: "approle"}, w, "")
	u := bootdata.UserData{Version: 1, Role: "web", Vault: v, Secrets: []bootdata.SecretFile{{Path: "kv/data/web/tls", Name: "tls"}}}
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	if v.WrappedSecretID.Reveal() != token || v.RoleID != "rid" {
		t.Errorf("%+v", v)
	}
}
