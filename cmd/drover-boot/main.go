// Command drover-boot is the agent baked into every drover image. systemd runs it at boot, before the
// role's services (DESIGN.md §6). It reads which image booted (/etc/drover/image.json), finds the
// instance's user-data (a file named by flag, qemu's fw_cfg, or the EC2 / Vultr metadata service),
// and when the user-data has a Vault section: checks that the response-wrapped SecretID was created
// by the role's own AppRole, unwraps it, logs in, reads each declared secret and writes it to a tmpfs
// (/run/drover/secrets, mode 0400 unless declared otherwise), then reports on the console and in
// /run/drover/status. It then keeps the Vault token alive until SIGTERM and revokes it, or with
// --oneshot revokes it at once.
//
// When the user-data lists certificates, drover-boot then issues each from Vault's PKI engine with
// the instance's own token (certificates.go), writes NAME.key and NAME.crt (certificate and issuing
// CA) next to the secrets before reporting READY, and, while it keeps the token alive, renews each
// at two thirds of its lifetime and reload-or-restarts the units the certificate names.
//
// With "auth": "aws" in the Vault section, nothing secret is delivered: drover-boot instead logs in
// with Vault's aws auth method (iam type), signing an sts:GetCallerIdentity request with the
// instance profile's credentials from the EC2 metadata service, and goes on as above.
//
// When the user-data lists volumes, drover-boot then mounts each (volumes.go): it waits for the
// device (the handoff may attach it long after boot), formats it only when blank, checks it and
// mounts it, and only then reports READY, so the role's services start on their data or not at all.
//
// The user-data stays in memory: drover-boot makes no copy of it, so there is none to remove.
//
// Any failure is one line on stderr and in the status file, and exit status 1, so units that Require
// drover-boot do not start; the wrapping token is single-use and drover-boot never retries with
// another. No token or secret value is ever printed or written anywhere but the secret files.
//
// Exit status: 0 booted (secrets written, or none to fetch) and, when renewing, stopped cleanly;
// 1 boot failed; 2 bad flags; 3 stopped, but revoking the Vault token failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitStop   = 3
)

const (
	defaultFwCfg       = "/sys/firmware/qemu_fw_cfg/by_name/opt/drover/user-data/raw"
	defaultMetadataURL = "http://169.254.169.254"
	none               = "none" // disables a user-data source
)

// config is what flags and the environment set.
type config struct {
	Root         string        // the system's root: image.json and the default status and secrets paths are under it
	StatusPath   string        // the status file
	SecretsDir   string        // where secrets are written
	NoMount      bool          // do not check for, or mount, a tmpfs at SecretsDir (tests)
	UserDataPath string        // a user-data file: when set, the only source
	FwCfgPath    string        // qemu's fw_cfg user-data file, or "none"
	MetadataURL  string        // the EC2 / Vultr metadata service, or "none"
	Oneshot      bool          // revoke the Vault token right after writing the secrets
	Wait         time.Duration // how long to retry reaching the metadata service and Vault while the network comes up
	VolumeWait   time.Duration // how long to wait for a volume's device to appear
	Devices      blockDevices  // mounts volumes; nil means the system's tools (hostDevices)
	Net          dropletNet    // configures a droplet's network (digitalocean.go); nil means the system's (hostNet)
	volumePoll   time.Duration // how often to look for a volume's device; zero means 1s (tests shorten it)
	volumeSay    time.Duration // how often to say it is still waiting; zero means 10s (tests shorten it)

	// Reload reload-or-restarts units after a certificate's renewal; nil means systemctl's.
	Reload func(ctx context.Context, units []string) error
	// InstanceAddress is the instance's own address for a certificate's ${instance.address}; nil
	// means the source address of its route to Vault.
	InstanceAddress func(ctx context.Context) (netip.Addr, error)

	Stdout, Stderr io.Writer
	Now            func() time.Time
	Notify         func(state string) // systemd's sd_notify; nil does nothing
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "slot" {
		os.Exit(slotMain(os.Args[2:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
	}
	c, err := parseFlags(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "drover-boot: %v\n", err)
		os.Exit(exitUsage)
	}
	c.Stdout, c.Stderr, c.Now, c.Notify = os.Stdout, os.Stderr, time.Now, sdNotify
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, c))
}

func parseFlags(args []string, getenv func(string) string) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envBool := func(name string) bool {
		switch strings.ToLower(getenv(name)) {
		case "1", "true", "yes":
			return true
		}
		return false
	}
	var c config
	fs := flag.NewFlagSet("drover-boot", flag.ContinueOnError)
	fs.StringVar(&c.Root, "root", env("DROVER_BOOT_ROOT", "/"), "the system's root (tests point it at a tree) [DROVER_BOOT_ROOT]")
	fs.StringVar(&c.StatusPath, "status", getenv("DROVER_BOOT_STATUS"), "the status file (default ROOT/run/drover/status) [DROVER_BOOT_STATUS]")
	fs.StringVar(&c.SecretsDir, "secrets-dir", getenv("DROVER_BOOT_SECRETS_DIR"), "where secrets are written (default ROOT/run/drover/secrets) [DROVER_BOOT_SECRETS_DIR]")
	fs.BoolVar(&c.NoMount, "no-mount", envBool("DROVER_BOOT_NO_MOUNT"), "do not require or mount a tmpfs at the secrets dir (tests only) [DROVER_BOOT_NO_MOUNT]")
	fs.StringVar(&c.UserDataPath, "user-data", getenv("DROVER_BOOT_USER_DATA"), "read user-data from this file and nowhere else [DROVER_BOOT_USER_DATA]")
	fs.StringVar(&c.FwCfgPath, "fw-cfg", env("DROVER_BOOT_FW_CFG", defaultFwCfg), "qemu fw_cfg user-data file, or none [DROVER_BOOT_FW_CFG]")
	fs.StringVar(&c.MetadataURL, "metadata-url", env("DROVER_BOOT_METADATA_URL", defaultMetadataURL), "EC2 IMDSv2 / Vultr metadata service, or none [DROVER_BOOT_METADATA_URL]")
	fs.BoolVar(&c.Oneshot, "oneshot", envBool("DROVER_BOOT_ONESHOT"), "revoke the Vault token right after writing the secrets, and exit [DROVER_BOOT_ONESHOT]")
	wait := env("DROVER_BOOT_WAIT", "30s")
	volumeWait := env("DROVER_BOOT_VOLUME_WAIT", "30m")
	fs.Func("volume-wait", "how long to wait for a volume's device, which the handoff may attach long after boot (default 30m) [DROVER_BOOT_VOLUME_WAIT]", func(s string) error {
		volumeWait = s
		return nil
	})
	fs.Func("wait", "how long to retry the metadata service and Vault while the network comes up (default 30s) [DROVER_BOOT_WAIT]", func(s string) error {
		wait = s
		return nil
	})
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	d, err := time.ParseDuration(wait)
	if err != nil || d < 0 {
		return c, fmt.Errorf("wait %q: want a duration such as 30s", wait)
	}
	c.Wait = d
	if c.VolumeWait, err = time.ParseDuration(volumeWait); err != nil || c.VolumeWait <= 0 {
		return c, fmt.Errorf("volume-wait %q: want a duration such as 30m", volumeWait)
	}
	if c.MetadataURL != none && !strings.HasPrefix(c.MetadataURL, "http://") && !strings.HasPrefix(c.MetadataURL, "https://") {
		return c, fmt.Errorf("metadata-url %q: want an http:// URL or none", c.MetadataURL)
	}
	return c, nil
}

// image is /etc/drover/image.json, written by the image builder.
type image struct {
	Role     string   `json:"role"`
	Identity string   `json:"identity"`
	Secrets  []string `json:"secrets"` // the secret paths the role declares (names, never values)
	// Certificates are the Vault issue paths of the role's certificates.
	Certificates []string `json:"certificates,omitempty"`
}

// needsVault says whether the image cannot start its services without Vault: it declares
// secrets or certificates.
func (img image) needsVault() bool { return len(img.Secrets) > 0 || len(img.Certificates) > 0 }

// status is /run/drover/status: what the rollout's health checks and a person can read. It never holds
// a token or a secret value.
type status struct {
	State    string    `json:"state"` // ok, failed, waiting (for a volume)
	Role     string    `json:"role,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
	// UserData is where the user-data came from: "file PATH", "fw_cfg", "ec2-imdsv2", "vultr", or
	// "none".
	UserData string `json:"user_data,omitempty"`
	// Secrets are the names of the files written under SecretsDir.
	Secrets    []string `json:"secrets,omitempty"`
	SecretsDir string   `json:"secrets_dir,omitempty"`
	// Vault is the Vault token's state: none (nothing to fetch), renewing, expiring (not renewable,
	// or at its max TTL), expired, revoked, revoke-failed.
	Vault string `json:"vault,omitempty"`
	// TokenAccessor names the instance's Vault token (it can look up or revoke it, not use it).
	TokenAccessor string     `json:"token_accessor,omitempty"`
	TokenExpires  *time.Time `json:"token_expires,omitempty"`
	// Certificates are the certificates issued from Vault's PKI engine, each NAME.key and NAME.crt
	// under SecretsDir.
	Certificates []certStatus `json:"certificates,omitempty"`
	// Volumes are the volumes mounted, "NAME on MOUNT".
	Volumes []string `json:"volumes,omitempty"`
	// Waiting, with State "waiting", is what drover-boot waits for before it starts the services:
	// "volume NAME at DEVICE".
	Waiting string `json:"waiting,omitempty"`
	// Reason is why the boot failed, in one line.
	Reason string `json:"reason,omitempty"`
	// Warning is the last problem that did not fail the boot (a renewal or a revocation).
	Warning string `json:"warning,omitempty"`
}

// boot is one run.
type boot struct {
	c       config
	st      status
	scrub   scrubber
	written []string // secret files written by this run, removed again if it fails

	mdUnreachable error // why the metadata service could not be reached, if it could not
	volWait       volumeWait

	certEvents <-chan certEvent // what the certificate renewer reports; nil without certificates
	certDone   chan struct{}    // closed when the renewer has stopped
}

func run(ctx context.Context, c config) int {
	if c.Root == "" {
		c.Root = "/"
	}
	if c.StatusPath == "" {
		c.StatusPath = filepath.Join(c.Root, "run/drover/status")
	}
	if c.SecretsDir == "" {
		c.SecretsDir = filepath.Join(c.Root, "run/drover/secrets")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Notify == nil {
		c.Notify = func(string) {}
	}
	if c.Reload == nil {
		c.Reload = systemctlReload
	}
	if c.Devices == nil {
		c.Devices = hostDevices{mountinfo: "/proc/self/mountinfo", sysBlock: "/sys/block"}
	}
	if c.VolumeWait == 0 {
		c.VolumeWait = 30 * time.Minute
	}
	if c.volumePoll == 0 {
		c.volumePoll = time.Second
	}
	if c.volumeSay == 0 {
		c.volumeSay = 10 * time.Second
	}
	b := &boot{c: c, volWait: volumeWait{Limit: c.VolumeWait, Poll: c.volumePoll, Say: c.volumeSay}}
	return b.run(ctx)
}

func (b *boot) run(ctx context.Context) int {
	img, err := readImage(filepath.Join(b.c.Root, "etc/drover/image.json"))
	if err != nil {
		return b.fail(err)
	}
	b.st.Role, b.st.Identity = img.Role, img.Identity
	private, err := b.labSegment(ctx)
	if err != nil {
		return b.fail(err)
	}

	raw, src, err := b.userData(ctx, img.needsVault())
	if err != nil {
		return b.fail(err)
	}
	b.st.UserData = src
	if raw == nil {
		return b.nothingToFetch(ctx, img, nil, "no user-data in "+b.sources())
	}
	ud, err := bootdata.Parse(raw)
	notJSON := !strings.HasPrefix(strings.TrimSpace(string(raw)), "{")
	clear(raw)
	if err != nil {
		if notJSON && !img.needsVault() {
			// Someone else's user-data (a cloud-config, or under qemu's user network the host's own
			// metadata service answering): nothing for an image without secrets.
			return b.nothingToFetch(ctx, img, nil, "user-data from "+src+" is not drover's (not a JSON object)")
		}
		return b.fail(fmt.Errorf("user-data from %s: %w", src, err))
	}
	if ud.Role != img.Role {
		return b.fail(fmt.Errorf("user-data from %s is for role %q, this image is role %q", src, ud.Role, img.Role))
	}
	if err := writeRaftEnv(filepath.Dir(b.c.StatusPath), ud.Raft, private); err != nil {
		return b.fail(err)
	}
	if ud.Vault == nil {
		return b.nothingToFetch(ctx, img, ud.Volumes, "user-data from "+src+" without a vault section")
	}
	b.scrub.add(ud.Vault.WrappedSecretID)

	// Everything that can fail on this machine fails before the single-use token is spent.
	targets, err := resolveTargets(b.c.Root, ud.Secrets)
	if err != nil {
		return b.fail(err)
	}
	certs, err := resolveCertificates(ud.Certificates)
	if err != nil {
		return b.fail(err)
	}
	if err := prepareDir(b.c.SecretsDir, !b.c.NoMount, needsTraverse(append(targets, certFiles(certs)...))); err != nil {
		return b.fail(err)
	}
	vc, err := newVaultClient(ud.Vault)
	if err != nil {
		return b.fail(err)
	}

	tok, err := b.login(ctx, vc, ud)
	if err != nil {
		return b.fail(err)
	}
	b.st.TokenAccessor = tok.accessor
	if err := b.fetchAndWrite(ctx, vc, tok, targets); err != nil {
		b.revokeAfterFailure(vc, tok)
		return b.fail(err)
	}
	if err := b.bootCertificates(ctx, vc, tok.token, ud.Vault.Addr, certs); err != nil {
		b.revokeAfterFailure(vc, tok)
		return b.fail(err)
	}

	if err := writeVaultEnv(filepath.Dir(b.c.StatusPath), ud.Vault); err != nil {
		b.revokeAfterFailure(vc, tok)
		return b.fail(err)
	}
	// Volumes after the secrets: the wrapping token lives minutes, a volume may come much later.
	if err := b.mountVolumes(ctx, b.c.Devices, ud.Volumes); err != nil {
		b.revokeAfterFailure(vc, tok)
		return b.fail(err)
	}
	b.st.State, b.st.Time, b.st.SecretsDir = "ok", b.c.Now().UTC(), b.c.SecretsDir
	for _, t := range targets {
		b.st.Secrets = append(b.st.Secrets, t.f.Name)
	}
	if b.c.Oneshot {
		if err := vc.revokeSelf(context.WithoutCancel(ctx), tok.token); err != nil {
			b.st.Vault, b.st.Warning = "revoke-failed", b.scrub.clean("revoking the vault token: "+err.Error())
			b.say(b.c.Stderr, "warning: %s (it expires by itself at %s)", b.st.Warning, tok.expires().Format(time.RFC3339))
		} else {
			b.st.Vault = "revoked"
		}
	} else {
		b.st.Vault = "renewing"
		if !tok.renewable || tok.lease == 0 {
			b.st.Vault = "expiring"
		}
		if tok.lease > 0 {
			exp := tok.expires().UTC()
			b.st.TokenExpires = &exp
		}
	}
	if err := b.writeStatus(); err != nil {
		b.revokeAfterFailure(vc, tok)
		return b.fail(err)
	}
	b.say(b.c.Stdout, "role %s image %s: wrote %d secrets to %s (%s)%s; user-data from %s; vault token %s",
		img.Role, img.Identity, len(b.st.Secrets), b.c.SecretsDir, strings.Join(b.st.Secrets, ", "), certSummary(certs), src, b.st.Vault)
	b.c.Notify("READY=1\nSTATUS=secrets written: " + strings.Join(b.st.Secrets, ", ") + certSummary(certs))
	if b.c.Oneshot {
		return exitOK
	}
	b.startRenewer(ctx, vc, tok.token, certs)
	code := b.keep(ctx, vc, tok)
	if b.certDone != nil {
		<-b.certDone
	}
	return code
}

// nothingToFetch ends a boot without secrets, once vols are mounted: fine for an image that
// declares none.
func (b *boot) nothingToFetch(ctx context.Context, img image, vols []bootdata.VolumeMount, why string) int {
	if len(img.Secrets) > 0 {
		return b.fail(fmt.Errorf("%s, but the image declares secrets %s", why, strings.Join(img.Secrets, ", ")))
	}
	if len(img.Certificates) > 0 {
		return b.fail(fmt.Errorf("%s, but the image declares certificates from %s", why, strings.Join(img.Certificates, ", ")))
	}
	if err := b.mountVolumes(ctx, b.c.Devices, vols); err != nil {
		return b.fail(err)
	}
	if b.st.UserData == "" {
		b.st.UserData = none
	}
	b.st.State, b.st.Vault, b.st.Time = "ok", none, b.c.Now().UTC()
	if err := b.writeStatus(); err != nil {
		return b.fail(err)
	}
	b.say(b.c.Stdout, "role %s image %s booted: no secrets to fetch (%s)", img.Role, img.Identity, why)
	b.c.Notify("READY=1\nSTATUS=no secrets to fetch")
	return exitOK
}

// fail reports err on stderr and in the status file, removes the secret files this run wrote, and
// returns exitFailed.
func (b *boot) fail(err error) int {
	for _, name := range b.written {
		_ = os.Remove(filepath.Join(b.c.SecretsDir, name))
	}
	b.written = nil
	b.st.State, b.st.Reason, b.st.Time = "failed", oneLine(b.scrub.clean(err.Error())), b.c.Now().UTC()
	b.st.Secrets, b.st.SecretsDir = nil, ""
	if werr := b.writeStatus(); werr != nil {
		b.say(b.c.Stderr, "failed: %s; and %v", b.st.Reason, werr)
		return exitFailed
	}
	b.say(b.c.Stderr, "failed: %s", b.st.Reason)
	return exitFailed
}

// say writes one console line, scrubbed of every token and value this run has seen.
func (b *boot) say(w io.Writer, format string, args ...any) {
	fmt.Fprintln(w, "drover-boot: "+oneLine(b.scrub.clean(fmt.Sprintf(format, args...))))
}

func (b *boot) writeStatus() error {
	st := b.st
	st.Reason, st.Warning = b.scrub.clean(st.Reason), b.scrub.clean(st.Warning)
	if err := os.MkdirAll(filepath.Dir(b.c.StatusPath), 0o755); err != nil {
		return fmt.Errorf("status file: %w", err)
	}
	j, _ := json.Marshal(st)
	if err := replaceFile(b.c.StatusPath, append(j, '\n')); err != nil {
		return fmt.Errorf("the status file: %w", err)
	}
	return nil
}

func readImage(path string) (image, error) {
	var img image
	b, err := os.ReadFile(path)
	if err != nil {
		return img, fmt.Errorf("reading the image description: %w", err)
	}
	if err := json.Unmarshal(b, &img); err != nil {
		return img, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	if img.Role == "" || img.Identity == "" {
		return img, fmt.Errorf("%s names no role or identity", path)
	}
	return img, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// scrubber replaces every token and secret value this run has seen with [REDACTED] in what it prints:
// a second line of defence behind never formatting them in the first place.
type scrubber struct{ vals []string }

func (s *scrubber) add(v secrets.Secret) {
	if len(v.Reveal()) >= 4 {
		s.vals = append(s.vals, v.Reveal())
	}
}

func (s *scrubber) clean(msg string) string {
	for _, v := range s.vals {
		msg = strings.ReplaceAll(msg, v, secrets.Redacted)
	}
	return msg
}

var errInterrupted = errors.New("interrupted by a signal")
