package vault_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/secretstest"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

// TestContract runs the broker contract against one Vault dev server: the suite names its roles
// uniquely per subtest, so the subtests share it. Put writes KV version 2 with the root token; Login
// does what drover-boot does: sys/wrapping/unwrap with the wrapping token, auth/approle/login, reads
// with the login's token.
func TestContract(t *testing.T) {
	srv := vaulttest.Start(t)
	root := client(t, srv.Addr, srv.RootToken)
	b, err := vault.New(&vault.Config{Address: srv.Addr, Token: secrets.Secret(srv.RootToken), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	secretstest.Run(t, func(t *testing.T) secretstest.Fixture {
		return secretstest.Fixture{
			Broker: b,
			Put: func(t *testing.T, path string, data map[string]string) {
				t.Helper()
				d := make(map[string]any, len(data))
				for k, v := range data {
					d[k] = v
				}
				if _, err := root.Logical().Write(path, map[string]any{"data": d}); err != nil {
					t.Fatalf("writing %s: %v", path, err)
				}
			},
			Login: func(t *testing.T, roleID string, w secrets.Wrapped) (func(string) (map[string]string, error), error) {
				t.Helper()
				sid, _, err := unwrap(t, srv.Addr, w)
				if err != nil {
					return nil, fmt.Errorf("unwrap: %w", err)
				}
				auth, err := login(t, srv.Addr, roleID, sid)
				if err != nil {
					return nil, fmt.Errorf("login: %w", err)
				}
				if auth == nil || auth.ClientToken == "" {
					return nil, errors.New("login: no token")
				}
				c := client(t, srv.Addr, auth.ClientToken)
				return func(path string) (map[string]string, error) {
					s, err := c.Logical().Read(path)
					if err != nil {
						return nil, err
					}
					if s == nil || s.Data == nil {
						return nil, fmt.Errorf("read %s: %w", path, secrets.ErrNotFound)
					}
					d, ok := s.Data["data"].(map[string]any)
					if !ok {
						return nil, fmt.Errorf("read %s: not a KV version 2 secret", path)
					}
					out := make(map[string]string, len(d))
					for k, v := range d {
						out[k] = fmt.Sprint(v)
					}
					return out, nil
				}, nil
			},
		}
	}, secretstest.Options{})
}
