package testmirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// makeKey makes the archive's signing key (ed25519, no passphrase, never expiring) in the
// mirror's GNUPGHOME and exports its public part to Dir/archive-key.gpg, outside dists/ and pool/
// so apt never takes it for archive content.
func (m *Mirror) makeKey(ctx context.Context) error {
	if err := m.gpg(ctx, "--quick-generate-key", "drover test archive <testmirror@drover.invalid>", "ed25519", "sign", "never"); err != nil {
		return err
	}
	pub, err := m.gpgOutput(ctx, "--export")
	if err != nil {
		return err
	}
	if len(pub) == 0 {
		return errors.New("testmirror: gpg --export wrote no key")
	}
	m.Keyring = filepath.Join(m.Dir, "archive-key.gpg")
	if err := os.WriteFile(m.Keyring, pub, 0o644); err != nil {
		return fmt.Errorf("testmirror: %w", err)
	}
	return nil
}

// sign writes InRelease (clearsigned) and Release.gpg (detached) for a Release file.
func (m *Mirror) sign(ctx context.Context, release string) error {
	if m.gnupg == "" {
		return errors.New("testmirror: the mirror is closed: its key is gone, so it cannot be re-signed")
	}
	dir := filepath.Dir(release)
	if err := m.gpg(ctx, "--yes", "--digest-algo", "SHA256", "--clearsign", "-o", filepath.Join(dir, "InRelease"), release); err != nil {
		return err
	}
	return m.gpg(ctx, "--yes", "--digest-algo", "SHA256", "--armor", "--detach-sign", "-o", filepath.Join(dir, "Release.gpg"), release)
}

func (m *Mirror) gpg(ctx context.Context, args ...string) error {
	_, err := m.gpgOutput(ctx, args...)
	return err
}

// gpgOutput runs gpg in batch mode on the mirror's GNUPGHOME and returns its standard output.
func (m *Mirror) gpgOutput(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "gpg", append([]string{"--batch", "--no-tty", "--homedir", m.gnupg, "--passphrase", "", "--pinentry-mode", "loopback"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("testmirror: gpg %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
