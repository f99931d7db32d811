package tree

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Package is one installed Debian package, for the image's SBOM.
type Package struct {
	Name    string
	Version string
	Arch    string
}

// Packages lists the packages installed in the tree at root, sorted by
// name and architecture, from its dpkg database (var/lib/dpkg/status):
// that is what dpkg itself trusts, and it needs neither apt lists nor
// running anything in the tree. Packages that are only unpacked, removed
// with their configuration files left, or half-installed are not listed.
func Packages(root string) ([]Package, error) {
	f, err := os.Open(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		return nil, stepErr("sbom", fmt.Errorf("read the dpkg database: %w", err))
	}
	defer f.Close()
	pkgs, err := parseDpkgStatus(f)
	if err != nil {
		return nil, stepErr("sbom", fmt.Errorf("parse %s: %w", f.Name(), err))
	}
	return pkgs, nil
}

// parseDpkgStatus reads a dpkg status file: RFC 822-style stanzas
// separated by blank lines, continuation lines starting with a space.
func parseDpkgStatus(r io.Reader) ([]Package, error) {
	var pkgs []Package
	var cur Package
	var status string
	flush := func() {
		if cur.Name != "" && isInstalled(status) {
			pkgs = append(pkgs, cur)
		}
		cur, status = Package{}, ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "package":
			cur.Name = value
		case "version":
			cur.Version = value
		case "architecture":
			cur.Arch = value
		case "status":
			status = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	flush()
	slices.SortFunc(pkgs, func(a, b Package) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Arch, b.Arch))
	})
	return pkgs, nil
}

// isInstalled reports whether a Status field ("want flag status") says
// the package is fully installed, e.g. "install ok installed" or
// "hold ok installed".
func isInstalled(status string) bool {
	f := strings.Fields(status)
	return len(f) == 3 && f[1] == "ok" && f[2] == "installed"
}
