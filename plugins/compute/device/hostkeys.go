package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
)

// ErrUnknownHostKey is a first contact that nobody confirmed: the error names the fingerprint.
var ErrUnknownHostKey = errors.New("device: unknown host key")

// ErrHostKeyChanged is a host offering another key than the one pinned.
var ErrHostKeyChanged = errors.New("device: HOST KEY CHANGED")

// pins is the hosts' pinned keys, a JSON file in drover's state (host:port -> fingerprint). Safe
// for concurrent use in one process; written through a temporary file and a rename.
type pins struct {
	mu   sync.Mutex
	path string
}

func (p *pins) load() (map[string]string, error) {
	m := map[string]string{}
	data, err := os.ReadFile(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("device: pinned host keys: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("device: pinned host keys %s: %w", p.path, err)
	}
	return m, nil
}

func (p *pins) pin(addr, fp string) error {
	m, err := p.load()
	if err != nil {
		return err
	}
	m[addr] = fp
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return fmt.Errorf("device: pinning a host key: %w", err)
	}
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("device: pinning a host key: %w", err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		return fmt.Errorf("device: pinning a host key: %w", err)
	}
	return nil
}

// callback checks a host's key: against the fleet's fingerprint when it gives one, else against the
// pin; an unpinned key is pinned once the fleet's fingerprint matched or confirm said yes.
func (p *pins) callback(addr, fleetFP string, confirm func(addr, fingerprint string) bool) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		fp := ssh.FingerprintSHA256(key)
		m, err := p.load()
		if err != nil {
			return err
		}
		pinned, ok := m[addr]
		switch {
		case ok && pinned != fp:
			return fmt.Errorf("%w: %s offers %s key %s, but drover pinned %s at first contact (in %s); refusing to connect: someone may be intercepting, or the device was reinstalled (then check the new key on it and remove its line from that file)",
				ErrHostKeyChanged, addr, key.Type(), fp, pinned, p.path)
		case fleetFP != "" && fleetFP != fp:
			return fmt.Errorf("%w: %s offers %s key %s, the block's host_keys says %s; refusing to connect", ErrHostKeyChanged, addr, key.Type(), fp, fleetFP)
		case ok:
			return nil
		case fleetFP == "" && (confirm == nil || !confirm(addr, fp)):
			return fmt.Errorf("%w: first contact with %s, whose %s key is %s; check it on the device (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub) and confirm it, or set host_keys = { %q = %q } in the compute block",
				ErrUnknownHostKey, addr, key.Type(), fp, keyFile(key.Type()), addr, fp)
		}
		return p.pin(addr, fp)
	}
}

func keyFile(typ string) string {
	switch typ {
	case ssh.KeyAlgoED25519:
		return "ed25519"
	case ssh.KeyAlgoRSA:
		return "rsa"
	}
	return "ecdsa"
}
