package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// vaultClient speaks the few endpoints of Vault's HTTP API drover-boot needs, with net/http: the
// vault/api module would make the agent several times larger.
type vaultClient struct {
	addr string
	hc   *http.Client
}

func newVaultClient(v *bootdata.Vault) (*vaultClient, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if v.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(v.CACert)) {
			return nil, errors.New("the vault ca_cert in the user-data holds no usable certificate")
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &vaultClient{
		addr: strings.TrimRight(v.Addr, "/"),
		hc: &http.Client{
			Transport: tr,
			Timeout:   30 * time.Second,
			// A redirect (from a standby node) would resend X-Vault-Token wherever it points:
			// answer it as an error instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// apiError is Vault's answer to a request it refused: the status and its messages, which never hold
// a token or a value.
type apiError struct {
	op     string
	status int
	msgs   []string
}

func (e *apiError) Error() string {
	msg := strings.Join(e.msgs, "; ")
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("vault %s: %d %s: %s", e.op, e.status, http.StatusText(e.status), msg)
}

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status
	}
	return 0
}

// call sends a request to /v1/path. body is marshalled as JSON (so it must hold revealed strings,
// never a secrets.Secret, which marshals as [REDACTED]); out, when not nil, gets the JSON answer.
func (c *vaultClient) call(ctx context.Context, method, path string, token secrets.Secret, body any, out any) error {
	op := method + " " + path
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("vault %s: %w", op, err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+"/v1/"+path, rd)
	if err != nil {
		return fmt.Errorf("vault %s: %w", op, err)
	}
	req.Header.Set("X-Vault-Request", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token.Reveal())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &transportError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &transportError{fmt.Errorf("vault %s: reading the answer: %w", op, err)}
	}
	defer clear(data)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &apiError{op: op, status: resp.StatusCode}
		var e struct {
			Errors []string `json:"errors"`
		}
		if json.Unmarshal(data, &e) == nil {
			for _, m := range e.Errors {
				// A multierror: "1 error occurred:\n\t* permission denied\n\n".
				for line := range strings.Lines(m) {
					line = strings.TrimPrefix(strings.TrimSpace(line), "* ")
					if line != "" && !strings.HasSuffix(line, "occurred:") {
						ae.msgs = append(ae.msgs, line)
					}
				}
			}
		}
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
			ae.msgs = append(ae.msgs, "redirected to "+loc+" (point addr at the active node or its load balancer)")
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("vault %s: the answer is not the JSON expected", op)
		}
	}
	return nil
}

type wrapLookup struct {
	CreationPath string      `json:"creation_path"`
	CreationTTL  json.Number `json:"creation_ttl"`
	CreationTime string      `json:"creation_time"`
}

// lookupWrapping is POST sys/wrapping/lookup: what created the wrapped response, without unwrapping it.
// It needs no token of its own.
func (c *vaultClient) lookupWrapping(ctx context.Context, wrapping secrets.Secret) (wrapLookup, error) {
	var out struct {
		Data *wrapLookup `json:"data"`
	}
	err := c.call(ctx, http.MethodPost, "sys/wrapping/lookup", "", map[string]string{"token": wrapping.Reveal()}, &out)
	if err != nil {
		return wrapLookup{}, err
	}
	if out.Data == nil {
		return wrapLookup{}, errors.New("vault POST sys/wrapping/lookup: the answer has no data")
	}
	return *out.Data, nil
}

// unwrap is POST sys/wrapping/unwrap authenticated by the wrapping token itself: the SecretID. It
// works once.
func (c *vaultClient) unwrap(ctx context.Context, wrapping secrets.Secret) (secretID secrets.Secret, accessor string, err error) {
	var out struct {
		Data struct {
			SecretID         secrets.Secret `json:"secret_id"`
			SecretIDAccessor string         `json:"secret_id_accessor"`
		} `json:"data"`
	}
	if err := c.call(ctx, http.MethodPost, "sys/wrapping/unwrap", wrapping, nil, &out); err != nil {
		return "", "", err
	}
	if out.Data.SecretID == "" {
		return "", "", errors.New("vault POST sys/wrapping/unwrap: the wrapped response holds no secret_id")
	}
	return out.Data.SecretID, out.Data.SecretIDAccessor, nil
}

// vaultToken is the instance's own token. It lives in memory only.
type vaultToken struct {
	token     secrets.Secret
	accessor  string
	lease     time.Duration // zero: does not expire
	renewable bool
	at        time.Time // when lease started
}

func (t vaultToken) expires() time.Time { return t.at.Add(t.lease) }

type authAnswer struct {
	Auth *struct {
		ClientToken   secrets.Secret `json:"client_token"`
		Accessor      string         `json:"accessor"`
		LeaseDuration int64          `json:"lease_duration"`
		Renewable     bool           `json:"renewable"`
	} `json:"auth"`
}

// login is POST auth/<mount>/login with the RoleID and the SecretID.
func (c *vaultClient) login(ctx context.Context, mount, roleID string, secretID secrets.Secret) (vaultToken, error) {
	return c.loginWith(ctx, mount, map[string]string{"role_id": roleID, "secret_id": secretID.Reveal()})
}

// loginWith is POST auth/<mount>/login with body, whatever the auth method: the token it answers.
func (c *vaultClient) loginWith(ctx context.Context, mount string, body map[string]string) (vaultToken, error) {
	var out authAnswer
	start := time.Now()
	if err := c.call(ctx, http.MethodPost, "auth/"+mount+"/login", "", body, &out); err != nil {
		return vaultToken{}, err
	}
	if out.Auth == nil || out.Auth.ClientToken == "" {
		return vaultToken{}, fmt.Errorf("vault POST auth/%s/login: the answer has no client token", mount)
	}
	a := out.Auth
	return vaultToken{token: a.ClientToken, accessor: a.Accessor, lease: time.Duration(a.LeaseDuration) * time.Second, renewable: a.Renewable, at: start}, nil
}

// renewSelf is POST auth/token/renew-self: the new lease, counted from the request.
func (c *vaultClient) renewSelf(ctx context.Context, t vaultToken) (vaultToken, error) {
	var out authAnswer
	start := time.Now()
	if err := c.call(ctx, http.MethodPost, "auth/token/renew-self", t.token, map[string]string{}, &out); err != nil {
		return t, err
	}
	if out.Auth == nil {
		return t, errors.New("vault POST auth/token/renew-self: the answer has no auth")
	}
	t.lease, t.renewable, t.at = time.Duration(out.Auth.LeaseDuration)*time.Second, out.Auth.Renewable, start
	return t, nil
}

// revokeSelf is POST auth/token/revoke-self, bounded to 10 seconds whatever ctx allows.
func (c *vaultClient) revokeSelf(ctx context.Context, t secrets.Secret) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.call(ctx, http.MethodPost, "auth/token/revoke-self", t, nil, nil)
}

// readKV is GET <path> of a KV version 2 secret: its fields, each value as raw JSON.
func (c *vaultClient) readKV(ctx context.Context, t secrets.Secret, path string) (map[string]secrets.Secret, error) {
	var out struct {
		Data *struct {
			Data map[string]json.RawMessage `json:"data"`
		} `json:"data"`
	}
	err := c.call(ctx, http.MethodGet, path, t, nil, &out)
	switch statusOf(err) {
	case 0:
	case http.StatusNotFound:
		return nil, fmt.Errorf("secret %s: not found in vault (%w)", path, err)
	case http.StatusForbidden:
		return nil, fmt.Errorf("secret %s: permission denied: the role's policy does not grant it (%w)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", path, err)
	}
	if out.Data == nil || out.Data.Data == nil {
		return nil, fmt.Errorf("secret %s: no data (a deleted or destroyed version, or not a KV version 2 path)", path)
	}
	fields := make(map[string]secrets.Secret, len(out.Data.Data))
	for k, v := range out.Data.Data {
		fields[k] = secrets.Secret(v)
		clear(v)
	}
	return fields, nil
}

// render is a secret file's content: one field's value (a JSON string unquoted, anything else as
// JSON), or all fields as a JSON object with sorted keys and a final newline. It returns the
// content and every value in it, for the scrubber.
func render(fields map[string]secrets.Secret, path, field string) (secrets.Secret, []secrets.Secret, error) {
	if field != "" {
		raw, ok := fields[field]
		if !ok {
			return "", nil, fmt.Errorf("secret %s has no field %q (its fields: %s)", path, field, strings.Join(sortedKeys(fields), ", "))
		}
		v := fieldValue(raw)
		return v, []secrets.Secret{v, raw}, nil
	}
	var buf bytes.Buffer
	var vals []secrets.Secret
	buf.WriteByte('{')
	for i, k := range sortedKeys(fields) {
		if i > 0 {
			buf.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		buf.Write(kj)
		buf.WriteByte(':')
		// Each value as Vault sent it (valid JSON, or readKV would have failed), compacted.
		if err := json.Compact(&buf, []byte(fields[k].Reveal())); err != nil {
			return "", nil, fmt.Errorf("secret %s: field %q is not valid JSON", path, k)
		}
		vals = append(vals, fieldValue(fields[k]), fields[k])
	}
	buf.WriteString("}\n")
	return secrets.Secret(buf.String()), vals, nil
}

// fieldValue is a field as a file holds it: a JSON string unquoted, anything else as compact JSON.
func fieldValue(raw secrets.Secret) secrets.Secret {
	var s string
	if json.Unmarshal([]byte(raw.Reveal()), &s) == nil {
		return secrets.Secret(s)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(raw.Reveal())) == nil {
		return secrets.Secret(buf.String())
	}
	return raw
}

func sortedKeys(m map[string]secrets.Secret) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
