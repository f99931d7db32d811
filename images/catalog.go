package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-dev/drover/images/tree"
	"github.com/drover-dev/drover/plugins/store"
)

// Catalog is the directory of built images: one directory per image, named by the hex of its
// identity, holding the disks, manifest.json, the file index and the build log. Images appear in it
// only complete: a build writes into a staging directory and renames it into place, so a reader never
// sees half an image and an interrupted build leaves the catalog as it was.
//
// A catalog given a state store (Share) also records its manifests and published references there
// and reads those other machines recorded (shared.go): Get, List, Resolve and Published then see the
// team's images, marked DiskElsewhere when their disk is not here; Has stays the local disk cache.
type Catalog struct {
	Dir string

	store store.Store     // nil: the local directory only
	ctx   context.Context // bounds the store's operations (Share)
}

// ErrNotFound is returned when no image matches a reference.
var ErrNotFound = errors.New("images: no such image")

const stagingPrefix = ".staging-"

// OpenCatalog returns the catalog under a state directory.
func OpenCatalog(stateDir string) *Catalog {
	return &Catalog{Dir: filepath.Join(stateDir, "images")}
}

func hexOf(identity string) string { return strings.TrimPrefix(identity, "sha256:") }

// ImageDir is where an image's files live.
func (c *Catalog) ImageDir(identity string) string { return filepath.Join(c.Dir, hexOf(identity)) }

// Has reports whether a complete image of this identity is in the catalog. It is the cache check of
// every build, so it costs one stat.
func (c *Catalog) Has(identity string) bool {
	_, err := os.Stat(filepath.Join(c.ImageDir(identity), "manifest.json"))
	return err == nil
}

// Get reads the manifest of an image by exact identity: the local catalog's, else the state store's.
func (c *Catalog) Get(identity string) (*Manifest, error) {
	m, err := readManifest(filepath.Join(c.ImageDir(identity), "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		shared, serr := c.sharedManifest(identity)
		if serr != nil {
			return nil, serr
		}
		if shared != nil {
			return shared, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, identity)
	}
	return m, err
}

// List returns every image, newest first within each role, roles sorted by name: the local
// catalog's and, for a shared catalog, those only the state store records (DiskElsewhere).
func (c *Catalog) List() ([]*Manifest, error) {
	out, err := c.listLocal()
	if err != nil {
		return nil, err
	}
	shared, err := c.sharedManifests()
	if err != nil {
		return nil, err
	}
	for _, m := range shared {
		if !slices.ContainsFunc(out, func(l *Manifest) bool { return l.Identity == m.Identity }) {
			out = append(out, m)
		}
	}
	sortManifests(out)
	return out, nil
}

func sortManifests(out []*Manifest) {
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role < out[j].Role
		}
		return out[i].Created.After(out[j].Created)
	})
}

// listLocal lists the images whose disks are in the local catalog.
func (c *Catalog) listLocal() ([]*Manifest, error) {
	entries, err := os.ReadDir(c.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("images: reading the catalog: %w", err)
	}
	var out []*Manifest
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		m, err := readManifest(filepath.Join(c.Dir, e.Name(), "manifest.json"))
		if err != nil {
			continue // not an image directory (or not readable): never ours to show
		}
		out = append(out, m)
	}
	sortManifests(out)
	return out, nil
}

// Resolve finds one image by a reference: ROLE (its newest image), ROLE@PREFIX, sha256:HEX, or a hex
// prefix of at least 6 digits. An ambiguous prefix is an error listing the matches.
func (c *Catalog) Resolve(ref string) (*Manifest, error) {
	all, err := c.List()
	if err != nil {
		return nil, err
	}
	role, prefix, hasAt := strings.Cut(ref, "@")
	if !hasAt {
		role, prefix = ref, ""
		if isHexPrefix(hexOf(ref)) && !hasRole(all, ref) {
			role, prefix = "", ref
		}
	}
	prefix = hexOf(prefix)
	var matches []*Manifest
	for _, m := range all {
		if role != "" && m.Role != role {
			continue
		}
		if prefix != "" && !strings.HasPrefix(hexOf(m.Identity), prefix) {
			continue
		}
		matches = append(matches, m)
		if prefix == "" {
			break // newest of the role
		}
	}
	switch {
	case len(matches) == 0:
		return nil, fmt.Errorf("%w: %q (drover images list shows what there is)", ErrNotFound, ref)
	case len(matches) > 1:
		ids := make([]string, len(matches))
		for i, m := range matches {
			ids[i] = m.Role + "@" + m.ShortID()
		}
		return nil, fmt.Errorf("images: %q is ambiguous: it matches %s", ref, strings.Join(ids, ", "))
	}
	return matches[0], nil
}

func hasRole(all []*Manifest, role string) bool {
	for _, m := range all {
		if m.Role == role {
			return true
		}
	}
	return false
}

func isHexPrefix(s string) bool {
	if len(s) < 6 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// FailedLogDir holds the logs of failed builds, beside the catalog; the newest few per role are kept.
func (c *Catalog) FailedLogDir() string { return filepath.Join(filepath.Dir(c.Dir), "failed-builds") }

// failedLogsKept is how many logs of failed builds KeepFailedLog keeps per role.
const failedLogsKept = 5

// KeepFailedLog moves the log of a failed build of role to FailedLogDir/ROLE/TIME.log and removes
// the role's older ones beyond the newest few. It returns the log's new path.
func (c *Catalog) KeepFailedLog(role, log string, at time.Time) (string, error) {
	dir := filepath.Join(c.FailedLogDir(), role)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("images: keeping the failed build's log: %w", err)
	}
	dst := filepath.Join(dir, at.UTC().Format("20060102T150405.000Z")+".log")
	if err := os.Rename(log, dst); err != nil {
		return "", fmt.Errorf("images: keeping the failed build's log: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	sort.Strings(old) // the time stamps sort as they happened
	for len(old) > failedLogsKept {
		_ = os.Remove(old[0])
		old = old[1:]
	}
	return dst, nil
}

// Staging is a directory a build writes an image into before it joins the catalog.
type Staging struct {
	Dir      string
	catalog  *Catalog
	identity string
}

// Stage creates a staging directory for an image. Staging directories of builds that died (their pid
// no longer runs) are removed first, so a killed build does not leak its half image forever.
func (c *Catalog) Stage(identity string) (*Staging, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("images: creating the catalog %s: %w", c.Dir, err)
	}
	c.removeDeadStaging()
	dir, err := os.MkdirTemp(c.Dir, fmt.Sprintf("%s%d-%s-", stagingPrefix, os.Getpid(), ShortID(identity)))
	if err != nil {
		return nil, fmt.Errorf("images: creating a staging directory: %w", err)
	}
	return &Staging{Dir: dir, catalog: c, identity: identity}, nil
}

func (c *Catalog) removeDeadStaging() {
	entries, _ := os.ReadDir(c.Dir)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), stagingPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || !alive(pid) {
			// A killed build may have left its overlay work tree mounted in it.
			_ = tree.RemoveTree(filepath.Join(c.Dir, e.Name()))
		}
	}
}

func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Commit writes the manifest last and renames the staging directory into the catalog. An image of the
// same identity already there (a concurrent build) wins; this one is discarded. A shared catalog
// then records the manifest in the state store (ShareManifest); when that fails the image is in the
// local catalog only, and the error says so.
func (s *Staging) Commit(m *Manifest) error {
	if err := s.commit(m); err != nil {
		return err
	}
	return s.catalog.ShareManifest(m)
}

func (s *Staging) commit(m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("images: encoding the manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(s.Dir, "manifest.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("images: writing the manifest: %w", err)
	}
	final := s.catalog.ImageDir(s.identity)
	if err := os.Rename(s.Dir, final); err != nil {
		if s.catalog.Has(s.identity) {
			return s.Discard()
		}
		return fmt.Errorf("images: moving the image into the catalog: %w", err)
	}
	return nil
}

// Discard removes the staging directory and everything in it.
func (s *Staging) Discard() error { return os.RemoveAll(s.Dir) }

// Remove deletes an image from the catalog: renamed away first so it vanishes at once, then removed.
func (c *Catalog) Remove(identity string) error {
	dir := c.ImageDir(identity)
	trash := filepath.Join(c.Dir, fmt.Sprintf("%s%d-trash-%s", stagingPrefix, os.Getpid(), ShortID(identity)))
	if err := os.Rename(dir, trash); err != nil {
		return fmt.Errorf("images: removing %s: %w", ShortID(identity), err)
	}
	return os.RemoveAll(trash)
}

// Prune keeps the newest keep images of each role and removes the others, except those inUse says a
// live or kept rollout still needs. It returns what it removed.
func (c *Catalog) Prune(keep int, inUse func(identity string) bool) ([]*Manifest, error) {
	prunable, err := c.Prunable(keep, inUse)
	if err != nil {
		return nil, err
	}
	var removed []*Manifest
	for _, m := range prunable {
		if err := c.Remove(m.Identity); err != nil {
			return removed, err
		}
		removed = append(removed, m)
	}
	return removed, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
