package testmirror

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Apt runs apt-get and apt-cache with a private state, cache and configuration and only the given
// sources.list, so they see an archive the way mmdebstrap's apt and an image's own apt would, and
// never the host's sources, keys or installed packages (the status is empty).
type Apt struct {
	Dir  string // the private state; made by NewApt
	Arch string
}

// NewApt makes a private apt state in dir for arch with the given sources.list content.
func NewApt(dir, arch, sources string) (Apt, error) {
	a := Apt{Dir: dir, Arch: arch}
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "empty", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return a, fmt.Errorf("testmirror: %w", err)
		}
	}
	for name, body := range map[string]string{"status": "", "sources.list": sources} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return a, fmt.Errorf("testmirror: %w", err)
		}
	}
	return a, nil
}

// SourcesFor is a sources.list for every suite of m, trusting keyring only (signed-by).
func SourcesFor(m *Mirror, keyring string) string {
	var b strings.Builder
	for _, s := range m.Suites() {
		fmt.Fprintf(&b, "deb [signed-by=%s] %s %s main\n", keyring, m.URL(), s)
	}
	return b.String()
}

// Run runs tool (apt-get or apt-cache) with the private state and returns its combined output.
func (a Apt) Run(ctx context.Context, tool string, args ...string) (string, error) {
	opts := []string{
		"-o", "Dir::State=" + a.Dir + "/state", "-o", "Dir::State::status=" + a.Dir + "/status",
		"-o", "Dir::Cache=" + a.Dir + "/cache", "-o", "Dir::Log=" + a.Dir + "/log",
		"-o", "Dir::Etc::SourceList=" + a.Dir + "/sources.list", "-o", "Dir::Etc::SourceParts=" + a.Dir + "/empty",
		"-o", "Dir::Etc::Parts=" + a.Dir + "/empty", "-o", "Dir::Etc::Preferences=" + a.Dir + "/empty/none",
		"-o", "Dir::Etc::PreferencesParts=" + a.Dir + "/empty",
		"-o", "Dir::Etc::Trusted=" + a.Dir + "/empty/none.gpg", "-o", "Dir::Etc::TrustedParts=" + a.Dir + "/empty",
		"-o", "APT::Architecture=" + a.Arch, "-o", "APT::Architectures::=" + a.Arch,
		"-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root",
	}
	out, err := exec.CommandContext(ctx, tool, append(opts, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("testmirror: %s %s: %w", tool, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// bootstrapSet is what mmdebstrap's apt variant installs (every Essential: yes package and apt)
// plus packages, as apt-get install arguments.
func bootstrapSet(packages []string) []string {
	return append([]string{"?essential", "apt"}, packages...)
}
