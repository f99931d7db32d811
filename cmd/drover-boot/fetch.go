package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// login logs the instance in to Vault. With the aws auth method (loginAWS) nothing was delivered;
// otherwise it turns the wrapping token into the instance's Vault token: look the token up and
// refuse it unless the role's own AppRole created it, unwrap it (once: it is single-use), log in
// with the RoleID and the SecretID. Only the lookup, which spends nothing, is retried, and only
// while Vault cannot be reached or answers 5xx (sealed, no leader) or 429, for at most Wait.
func (b *boot) login(ctx context.Context, vc *vaultClient, ud bootdata.UserData) (vaultToken, error) {
	v := ud.Vault
	if v.Auth == bootdata.AuthAWS {
		return b.loginAWS(ctx, vc, v) // nothing delivered: no wrapping token to look up
	}
	look, err := b.lookupWrapping(ctx, vc, v)
	if err != nil {
		return vaultToken{}, err
	}
	if look.CreationPath != v.CreationPath {
		return vaultToken{}, fmt.Errorf("refusing the wrapping token: it wraps a response of %q, not the SecretID of role %s (%q); it was not unwrapped", look.CreationPath, ud.Role, v.CreationPath)
	}
	secretID, _, err := vc.unwrap(ctx, v.WrappedSecretID)
	if err != nil {
		if statusOf(err) == http.StatusBadRequest {
			return vaultToken{}, fmt.Errorf("unwrapping the SecretID: vault refused the wrapping token (already unwrapped, expired or revoked): %w", err)
		}
		return vaultToken{}, fmt.Errorf("unwrapping the SecretID: %w", err)
	}
	b.scrub.add(secretID)
	tok, err := vc.login(ctx, v.Mount(), v.RoleID, secretID)
	if err != nil {
		if statusOf(err) == http.StatusBadRequest {
			return vaultToken{}, fmt.Errorf("logging in with the SecretID: vault refused it (destroyed, used or expired SecretID, or a wrong role_id): %w", err)
		}
		return vaultToken{}, fmt.Errorf("logging in with the SecretID: %w", err)
	}
	b.scrub.add(tok.token)
	return tok, nil
}

func (b *boot) lookupWrapping(ctx context.Context, vc *vaultClient, v *bootdata.Vault) (wrapLookup, error) {
	deadline := time.Now().Add(b.c.Wait)
	for {
		look, err := vc.lookupWrapping(ctx, v.WrappedSecretID)
		var te *transportError
		switch {
		case err == nil:
			return look, nil
		case statusOf(err) == http.StatusBadRequest:
			return look, fmt.Errorf("vault refused the wrapping token at lookup: it was already unwrapped, has expired or was revoked (single-use: drover-boot does not retry with another): %w", err)
		case !errors.As(err, &te) && statusOf(err) < 500 && statusOf(err) != http.StatusTooManyRequests:
			return look, fmt.Errorf("looking up the wrapping token: %w", err)
		case ctx.Err() != nil:
			return look, errInterrupted
		case time.Now().Add(time.Second).After(deadline):
			return look, fmt.Errorf("vault at %s not answering for %s: %w", v.Addr, b.c.Wait, err)
		}
		select {
		case <-ctx.Done():
			return look, errInterrupted
		case <-time.After(time.Second):
		}
	}
}

// fetchAndWrite reads every secret, and only when all are read writes them, each atomically.
func (b *boot) fetchAndWrite(ctx context.Context, vc *vaultClient, tok vaultToken, ts []target) error {
	for i := range ts {
		t := &ts[i]
		fields, err := vc.readKV(ctx, tok.token, t.f.Path)
		if err != nil {
			return err
		}
		for _, v := range fields {
			b.scrub.add(v)
		}
		var content secrets.Secret
		var vals []secrets.Secret
		if t.tmpl != nil {
			content, vals, err = renderTemplate(t.tmpl, fields, t.f.Path)
		} else {
			content, vals, err = render(fields, t.f.Path, t.f.Field)
		}
		if err != nil {
			return err
		}
		for _, v := range vals {
			b.scrub.add(v)
		}
		t.content = content
	}
	defer func() {
		for i := range ts {
			ts[i].content = ""
		}
	}()
	for _, t := range ts {
		if err := writeAtomic(b.c.SecretsDir, t); err != nil {
			return err
		}
		b.written = append(b.written, t.f.Name)
	}
	return nil
}

// revokeAfterFailure revokes the token of a boot that failed after logging in: nobody will use it.
func (b *boot) revokeAfterFailure(vc *vaultClient, tok vaultToken) {
	if err := vc.revokeSelf(context.Background(), tok.token); err != nil {
		b.say(b.c.Stderr, "warning: revoking the vault token after the failure: %s", strings.TrimSpace(err.Error()))
	}
}
