package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// certTarget is one certificate to issue: its names resolved, its files' owner resolved, and what
// the last issue gave.
type certTarget struct {
	c          bootdata.Certificate
	key, chain target // the two files; content is set only while being written

	commonName string
	altNames   []string
	ipSANs     []string

	serial   string
	issued   time.Time // when the request that issued it was sent
	notAfter time.Time
}

// renewAt is when the certificate is renewed: two thirds of its lifetime from its issue (Vault
// backdates NotBefore, so the request's time is the honest start).
func (t *certTarget) renewAt() time.Time {
	return t.issued.Add(t.notAfter.Sub(t.issued) * 2 / 3)
}

// resolveCertificates resolves every certificate's owner before anything is fetched.
func resolveCertificates(certs []bootdata.Certificate) ([]*certTarget, error) {
	var out []*certTarget
	for _, c := range certs {
		uid, gid, err := lookupOwner(c.File("").OwnerOrDefault())
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.Name, err)
		}
		out = append(out, &certTarget{c: c,
			key:   target{f: c.File(c.KeyName()), uid: uid, gid: gid},
			chain: target{f: c.File(c.ChainName()), uid: uid, gid: gid},
		})
	}
	return out, nil
}

// resolveNames gives every certificate its names, bootdata.InstanceAddress replaced with the
// instance's address (asked of addr once, and only when a name holds it). A name that is an IP
// address goes to the IP SANs: Vault takes addresses there only.
func resolveNames(ctx context.Context, ts []*certTarget, addr func(context.Context) (netip.Addr, error)) error {
	var self netip.Addr
	for _, t := range ts {
		c := t.c
		names := append([]string{c.CommonName}, c.AltNames...)
		holds := func(n string) bool { return strings.Contains(n, bootdata.InstanceAddress) }
		if !self.IsValid() && (slices.ContainsFunc(names, holds) || slices.ContainsFunc(c.IPSANs, holds)) {
			var err error
			if self, err = addr(ctx); err != nil {
				return fmt.Errorf("certificate %s: the instance's address for %s: %w", c.Name, bootdata.InstanceAddress, err)
			}
		}
		add := func(list *[]string, v string) {
			if !slices.Contains(*list, v) {
				*list = append(*list, v)
			}
		}
		t.commonName, t.altNames, t.ipSANs = bootdata.ResolveName(c.CommonName, self), nil, nil
		for _, n := range names {
			n = bootdata.ResolveName(n, self)
			if _, err := netip.ParseAddr(n); err == nil {
				add(&t.ipSANs, n)
			} else if n != t.commonName {
				add(&t.altNames, n)
			}
		}
		for _, ip := range c.IPSANs {
			add(&t.ipSANs, bootdata.ResolveName(ip, self))
		}
	}
	return nil
}

// routeAddress is the instance's own address as its network sees it: the source address of its
// route to Vault (under the lab's user network, the guest's 10.0.2.15; on a cloud, the private
// address). No packet is sent.
func routeAddress(vaultAddr string) func(context.Context) (netip.Addr, error) {
	return func(ctx context.Context) (netip.Addr, error) {
		u, err := url.Parse(vaultAddr)
		if err != nil {
			return netip.Addr{}, err
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "udp", net.JoinHostPort(u.Hostname(), port))
		if err != nil {
			return netip.Addr{}, fmt.Errorf("no route to vault at %s: %w", u.Host, err)
		}
		defer conn.Close()
		ap, err := netip.ParseAddrPort(conn.LocalAddr().String())
		if err != nil {
			return netip.Addr{}, err
		}
		return ap.Addr().Unmap(), nil
	}
}

// issueAnswer is the part of a PKI issue answer drover-boot uses.
type issueAnswer struct {
	Data *struct {
		Certificate  string         `json:"certificate"`
		IssuingCA    string         `json:"issuing_ca"`
		CAChain      []string       `json:"ca_chain"`
		PrivateKey   secrets.Secret `json:"private_key"`
		SerialNumber string         `json:"serial_number"`
	} `json:"data"`
}

// issueCertificate issues t from Vault with tok and writes its key, then its chain (certificate,
// then the issuing CA chain), each atomically. A failure before the writes leaves the old files.
func (b *boot) issueCertificate(ctx context.Context, vc *vaultClient, tok secrets.Secret, t *certTarget) error {
	body := map[string]string{"common_name": t.commonName, "ttl": strconv.FormatInt(t.c.TTL, 10) + "s", "format": "pem"}
	if len(t.altNames) > 0 {
		body["alt_names"] = strings.Join(t.altNames, ",")
	}
	if len(t.ipSANs) > 0 {
		body["ip_sans"] = strings.Join(t.ipSANs, ",")
	}
	var out issueAnswer
	start := time.Now()
	err := vc.call(ctx, http.MethodPost, t.c.IssuePath(), tok, body, &out)
	switch statusOf(err) {
	case 0:
	case http.StatusForbidden:
		return fmt.Errorf("certificate %s: permission denied at %s: the role's policy does not grant it (%w)", t.c.Name, t.c.IssuePath(), err)
	default:
		return fmt.Errorf("certificate %s: issuing at %s: %w", t.c.Name, t.c.IssuePath(), err)
	}
	if out.Data == nil || out.Data.Certificate == "" || out.Data.PrivateKey == "" {
		return fmt.Errorf("certificate %s: vault's answer at %s has no certificate or key", t.c.Name, t.c.IssuePath())
	}
	d := out.Data
	defer func() { d.PrivateKey = "" }()
	blk, _ := pem.Decode([]byte(d.Certificate))
	if blk == nil {
		return fmt.Errorf("certificate %s: vault's certificate is not PEM", t.c.Name)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("certificate %s: vault's certificate: %w", t.c.Name, err)
	}
	chain := []string{strings.TrimSpace(d.Certificate)}
	cas := d.CAChain
	if len(cas) == 0 && d.IssuingCA != "" {
		cas = []string{d.IssuingCA}
	}
	for _, ca := range cas {
		chain = append(chain, strings.TrimSpace(ca))
	}
	t.key.content = secrets.Secret(strings.TrimSpace(d.PrivateKey.Reveal()) + "\n")
	t.chain.content = secrets.Secret(strings.Join(chain, "\n") + "\n")
	defer func() { t.key.content, t.chain.content = "", "" }()
	// The key first: a reader that sees the new chain finds its key already there.
	for _, f := range []target{t.key, t.chain} {
		if err := writeAtomic(b.c.SecretsDir, f); err != nil {
			return fmt.Errorf("certificate %s: %w", t.c.Name, err)
		}
	}
	t.serial, t.issued, t.notAfter = d.SerialNumber, start, cert.NotAfter
	return nil
}

// issueCertificates issues every certificate at boot; the files written are removed again if the
// boot fails.
func (b *boot) issueCertificates(ctx context.Context, vc *vaultClient, tok secrets.Secret, ts []*certTarget) error {
	for _, t := range ts {
		if err := b.issueCertificate(ctx, vc, tok, t); err != nil {
			return err
		}
		b.written = append(b.written, t.c.KeyName(), t.c.ChainName())
	}
	return nil
}

// certStatus is a certificate's state in the status file.
type certStatus struct {
	Name     string    `json:"name"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	RenewAt  time.Time `json:"renew_at"`
	Renewals int       `json:"renewals"`
}

func (t *certTarget) status(renewals int) certStatus {
	return certStatus{Name: t.c.Name, Serial: t.serial, NotAfter: t.notAfter.UTC(), RenewAt: t.renewAt().UTC(), Renewals: renewals}
}

// certEvent is what the renewer reports to the main loop, which alone writes the status and the
// console.
type certEvent struct {
	index   int
	st      certStatus
	message string // a console line
	warning string // a problem that did not stop anything
}

// minCertRetry is the shortest wait before a failed renewal is tried again.
const minCertRetry = 5 * time.Second

// renewCertificates renews each certificate at two thirds of its lifetime until ctx ends: it issues
// a new one with tok, writes it atomically and reload-or-restarts its units, reporting on events. A
// failed renewal is tried again at two thirds of what is left of the old certificate (at least 5s
// later). It is the only goroutine touching ts once started.
func (b *boot) renewCertificates(ctx context.Context, vc *vaultClient, tok secrets.Secret, ts []*certTarget, events chan<- certEvent) {
	renewals := make([]int, len(ts))
	retry := make([]time.Time, len(ts))
	for {
		next := -1
		for i, t := range ts {
			at := t.renewAt()
			if !retry[i].IsZero() {
				at = retry[i]
			}
			if next < 0 || at.Before(nextAt(ts, retry, next)) {
				next = i
			}
		}
		if next < 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(nextAt(ts, retry, next))):
		}
		t := ts[next]
		report := func(ev certEvent) bool {
			select {
			case events <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if err := b.issueCertificate(ctx, vc, tok, t); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := max(time.Until(t.notAfter)*2/3, minCertRetry)
			retry[next] = time.Now().Add(wait)
			if !report(certEvent{index: next, st: t.status(renewals[next]), warning: fmt.Sprintf("renewing %s (tried again in %s)", err, wait.Round(time.Second))}) {
				return
			}
			continue
		}
		retry[next] = time.Time{}
		renewals[next]++
		ev := certEvent{index: next, st: t.status(renewals[next]),
			message: fmt.Sprintf("certificate %s renewed: serial %s until %s", t.c.Name, t.serial, t.notAfter.UTC().Format(time.RFC3339))}
		if len(t.c.Reload) > 0 {
			if err := b.c.Reload(ctx, t.c.Reload); err != nil {
				ev.warning = fmt.Sprintf("certificate %s renewed, but reloading %s: %v", t.c.Name, strings.Join(t.c.Reload, ", "), err)
			} else {
				ev.message += "; reloaded " + strings.Join(t.c.Reload, ", ")
			}
		}
		if !report(ev) {
			return
		}
	}
}

func nextAt(ts []*certTarget, retry []time.Time, i int) time.Time {
	if !retry[i].IsZero() {
		return retry[i]
	}
	return ts[i].renewAt()
}

// systemctlReload is the default config.Reload: systemctl reload-or-restart UNITS, bounded to 90s.
func systemctlReload(ctx context.Context, units []string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", append([]string{"reload-or-restart", "--"}, units...)...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			return err
		}
		return errors.New(oneLine(msg))
	}
	return nil
}

// certFiles are the files of ts, for needsTraverse.
func certFiles(ts []*certTarget) []target {
	var out []target
	for _, t := range ts {
		out = append(out, t.key, t.chain)
	}
	return out
}

// bootCertificates resolves the certificates' names and issues them, after the secrets and before
// the services start.
func (b *boot) bootCertificates(ctx context.Context, vc *vaultClient, tok secrets.Secret, vaultAddr string, ts []*certTarget) error {
	if len(ts) == 0 {
		return nil
	}
	addr := b.c.InstanceAddress
	if addr == nil {
		addr = routeAddress(vaultAddr)
	}
	if err := resolveNames(ctx, ts, addr); err != nil {
		return err
	}
	if err := b.issueCertificates(ctx, vc, tok, ts); err != nil {
		return err
	}
	for _, t := range ts {
		b.st.Certificates = append(b.st.Certificates, t.status(0))
	}
	return nil
}

// certSummary is the console's account of the certificates issued: "" without any.
func certSummary(ts []*certTarget) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s serial %s until %s", t.c.Name, t.serial, t.notAfter.UTC().Format(time.RFC3339)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; issued certificates " + strings.Join(parts, ", ")
}

// startRenewer starts renewing ts in the background (renewCertificates); its reports reach the
// status file through sleep.
func (b *boot) startRenewer(ctx context.Context, vc *vaultClient, tok secrets.Secret, ts []*certTarget) {
	if len(ts) == 0 {
		return
	}
	events := make(chan certEvent)
	b.certEvents, b.certDone = events, make(chan struct{})
	go func() {
		defer close(b.certDone)
		b.renewCertificates(ctx, vc, tok, ts, events)
	}()
}

// sleep waits d (forever when d < 0) or until ctx ends (false), applying the certificate renewer's
// reports meanwhile: the status file and the console are written by one goroutine only.
func (b *boot) sleep(ctx context.Context, d time.Duration) bool {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer:
			return true
		case ev := <-b.certEvents:
			if ev.index < len(b.st.Certificates) {
				b.st.Certificates[ev.index] = ev.st
			}
			if ev.message != "" {
				b.say(b.c.Stdout, "%s", ev.message)
			}
			if ev.warning != "" {
				b.st.Warning = b.scrub.clean(ev.warning)
				b.say(b.c.Stderr, "warning: %s", b.st.Warning)
			}
			b.status()
		}
	}
}
