package tree

import (
	"bytes"
	"os"
	"slices"
	"strings"
)

// hostIdentity is what identifies the build host and must not end up in
// an image.
type hostIdentity struct {
	names  []string // host names, full and short
	resolv []byte   // the content of its /etc/resolv.conf
}

// currentHost collects the build host's names (kernel host name and
// /etc/hostname, which is what mmdebstrap copies) and resolver config.
func currentHost() hostIdentity {
	var h hostIdentity
	var names []string
	if n, err := os.Hostname(); err == nil {
		names = append(names, n)
	}
	if b, err := os.ReadFile("/etc/hostname"); err == nil {
		names = append(names, strings.TrimSpace(string(b)))
	}
	for _, n := range names {
		short, _, _ := strings.Cut(n, ".")
		for _, v := range []string{n, short} {
			if v != "" && !isLocalName(v) && !slices.Contains(h.names, v) {
				h.names = append(h.names, v)
			}
		}
	}
	h.resolv, _ = os.ReadFile("/etc/resolv.conf")
	return h
}

// isLocalName reports names every Debian system uses for itself, which
// are no trace of the build host.
func isLocalName(n string) bool {
	switch n {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback",
		"ip6-allnodes", "ip6-allrouters", "ip6-localnet", "ip6-mcastprefix":
		return true
	}
	return false
}

// scrubHostIdentity removes the build host's values from the tree:
// /etc/hostname and /etc/mailname that hold a host name are removed (the
// machine gets its name at boot), host names are taken out of /etc/hosts,
// and a /etc/resolv.conf identical to the host's is removed. A role's own
// values are left alone.
func scrubHostIdentity(root string, host hostIdentity) error {
	for _, f := range []string{"/etc/hostname", "/etc/mailname"} {
		p, err := inTree(root, f)
		if err != nil {
			return err
		}
		if b, ok := readRegular(p); ok && slices.Contains(host.names, strings.TrimSpace(string(b))) {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	p, err := inTree(root, "/etc/resolv.conf")
	if err != nil {
		return err
	}
	if b, ok := readRegular(p); ok && len(bytes.TrimSpace(host.resolv)) > 0 &&
		bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(host.resolv)) {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	p, err = inTree(root, "/etc/hosts")
	if err != nil {
		return err
	}
	if b, ok := readRegular(p); ok {
		if out, changed := dropHostNames(string(b), host.names); changed {
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(out), fi.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

// readRegular reads p if it is a regular file (not through a symlink).
func readRegular(p string) ([]byte, bool) {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	b, err := os.ReadFile(p)
	return b, err == nil
}

// dropHostNames removes names from the host lists of an /etc/hosts file,
// and lines left with only an address. Comments are kept.
func dropHostNames(hosts string, names []string) (string, bool) {
	var out []string
	changed := false
	for _, line := range strings.SplitAfter(hosts, "\n") {
		body, comment, hasComment := strings.Cut(line, "#")
		fields := strings.Fields(body)
		if len(fields) < 2 {
			out = append(out, line)
			continue
		}
		kept := fields[:1]
		for _, f := range fields[1:] {
			if slices.Contains(names, f) {
				changed = true
				continue
			}
			kept = append(kept, f)
		}
		if len(kept) == len(fields) {
			out = append(out, line)
			continue
		}
		if len(kept) == 1 {
			continue
		}
		nl := strings.Join(kept, "\t")
		if hasComment {
			nl += " #" + strings.TrimRight(comment, "\n")
		}
		if strings.HasSuffix(line, "\n") {
			nl += "\n"
		}
		out = append(out, nl)
	}
	return strings.Join(out, ""), changed
}
