package main

import (
	"context"
	"net"
	"os"
	"time"
)

// minLease is the shortest lease worth renewing: below it the token is left to expire.
const minLease = 3 * time.Second

// keep renews the Vault token at two thirds of each lease until ctx ends (SIGTERM), then revokes it.
// A renewal that comes back shorter than the token's lease has reached the token's max TTL: there is
// nothing more to renew, and the token expires at the end of it. A failed renewal is retried with
// the same token while it lives; one that expires is reported and left alone.
func (b *boot) keep(ctx context.Context, vc *vaultClient, tok vaultToken) int {
	full := tok.lease
	renewing := tok.renewable && tok.lease >= minLease
	for renewing {
		wait := time.Until(tok.at.Add(tok.lease * 2 / 3))
		if !b.sleep(ctx, max(wait, 0)) {
			return b.stop(vc, tok)
		}
		next, err := vc.renewSelf(ctx, tok)
		switch {
		case ctx.Err() != nil:
			return b.stop(vc, tok)
		case err != nil:
			b.st.Warning = b.scrub.clean("renewing the vault token: " + err.Error())
			b.say(b.c.Stderr, "warning: %s", b.st.Warning)
			// Try again at two thirds of what is left.
			left := time.Until(tok.expires())
			if left < minLease {
				return b.expire(ctx, vc, tok)
			}
			tok.at, tok.lease = time.Now(), left
			b.status()
			continue
		}
		tok = next
		exp := tok.expires().UTC()
		b.st.TokenExpires, b.st.Warning = &exp, ""
		if !tok.renewable || tok.lease < full || tok.lease < minLease {
			b.st.Vault = "expiring"
			b.say(b.c.Stdout, "vault token at its max TTL: it expires at %s", exp.Format(time.RFC3339))
			renewing = false
		}
		b.status()
	}
	if tok.lease > 0 {
		return b.expire(ctx, vc, tok)
	}
	b.sleep(ctx, -1) // a token without a lease: it lives until revoked
	return b.stop(vc, tok)
}

// expire waits for the token's end or ctx, whichever comes first.
func (b *boot) expire(ctx context.Context, vc *vaultClient, tok vaultToken) int {
	if !b.sleep(ctx, max(time.Until(tok.expires()), 0)) {
		return b.stop(vc, tok)
	}
	b.st.Vault = "expired"
	b.status()
	b.say(b.c.Stdout, "vault token expired")
	b.sleep(ctx, -1)
	return exitOK
}

// stop revokes the token at SIGTERM.
func (b *boot) stop(vc *vaultClient, tok vaultToken) int {
	if tok.lease > 0 && time.Now().After(tok.expires()) {
		b.st.Vault = "expired"
		b.status()
		return exitOK
	}
	if err := vc.revokeSelf(context.Background(), tok.token); err != nil {
		b.st.Vault, b.st.Warning = "revoke-failed", b.scrub.clean("revoking the vault token: "+err.Error())
		b.status()
		b.say(b.c.Stderr, "stopping: %s", b.st.Warning)
		return exitStop
	}
	b.st.Vault, b.st.TokenExpires = "revoked", nil
	b.status()
	b.say(b.c.Stdout, "stopping: vault token revoked")
	return exitOK
}

// status rewrites the status file after a change while running; a failure is only reported.
func (b *boot) status() {
	b.st.Time = b.c.Now().UTC()
	if err := b.writeStatus(); err != nil {
		b.say(b.c.Stderr, "warning: %v", err)
	}
}

// sdNotify sends state to systemd when it runs drover-boot as Type=notify ($NOTIFY_SOCKET), and does
// nothing otherwise.
func sdNotify(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(state))
}
