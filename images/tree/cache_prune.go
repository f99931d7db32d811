package tree

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SupersededGrace is how long a tree that a newer tree of the same spec has replaced stays in the
// cache after its last use. A build reads its base tree (as an overlay's lower layer) only while
// it runs, which is minutes; the grace keeps a tree that a build still uses from being removed
// under it, and keeps the previous tree for a while for a build that pins it offline.
const SupersededGrace = 6 * time.Hour

// markUsed records a cache hit on a tree as its directory's modification time, which is what
// pruneSuperseded reads as "last used". A failure only lets the tree be pruned sooner.
func markUsed(dir string, now time.Time) { _ = os.Chtimes(dir, now, now) }

// pruneSuperseded removes, from the trees directory, the trees of spec key specKey other than
// keep (the newest, just built) whose last use is older than grace, with their .spec and
// .files.gz, and the leftovers of killed builds (.tmp-*) of that spec older than grace. Every
// archive update makes a new tree of each spec (a live mirror's trees are keyed by the archive's
// state), so without this the cache grows by a whole tree per spec and update, for ever.
//
// A directory written or used within grace is kept: a build in progress writes its .tmp-
// directory, and a build that reads a tree marked it used when it started. Failures are logged,
// not returned: they cost disk space, never a build. Returns the paths it removed.
func pruneSuperseded(trees, specKey, keep string, grace time.Duration, now time.Time, log io.Writer) []string {
	if log == nil {
		log = io.Discard
	}
	entries, err := os.ReadDir(trees)
	if err != nil {
		fmt.Fprintf(log, "tree: warning: pruning superseded trees: %v\n", err)
		return nil
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || name == keep || !strings.HasPrefix(name, specKey+"-") && !strings.HasPrefix(name, specKey+".tmp-") {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < grace {
			continue
		}
		dir := filepath.Join(trees, name)
		if err := removeCachedTree(dir); err != nil {
			fmt.Fprintf(log, "tree: warning: pruning a superseded tree: %v\n", err)
			continue
		}
		removed = append(removed, dir)
	}
	if len(removed) > 0 {
		fmt.Fprintf(log, "tree: removed %d superseded or interrupted tree(s) of base %s unused for %s\n", len(removed), specKey[:12], grace)
	}
	return removed
}

// pruneOtherRecipes removes, from the trees directory, the trees built by another recipe than this
// drover's (their .spec's recipe line names another keyVersion) whose last use is older than grace,
// with their .spec, .files.gz and the .latest that names them. A new drover that changes how trees
// are built changes every key, so nothing asks for those trees again; without this a cache keeps
// them for ever after an upgrade. A tree whose .spec has no recipe line (written before drover
// recorded it) is kept: its recipe is unknown. Failures are logged, not returned. Returns the
// trees it removed.
func pruneOtherRecipes(trees string, grace time.Duration, now time.Time, log io.Writer) []string {
	if log == nil {
		log = io.Discard
	}
	specs, _ := filepath.Glob(filepath.Join(trees, "*.spec"))
	var removed []string
	for _, spec := range specs {
		fields := specFields(spec)
		recipe, key := fields["recipe"], strings.TrimSuffix(filepath.Base(spec), ".spec")
		if recipe == "" || recipe == keyVersion {
			continue
		}
		dir := filepath.Join(trees, key)
		if info, err := os.Stat(dir); err == nil && now.Sub(info.ModTime()) < grace {
			continue
		}
		if err := removeCachedTree(dir); err != nil {
			fmt.Fprintf(log, "tree: warning: pruning a tree of recipe %s: %v\n", recipe, err)
			continue
		}
		if latest := filepath.Join(trees, fields["spec_key"]+".latest"); fields["spec_key"] != "" {
			if b, err := os.ReadFile(latest); err == nil && strings.TrimSpace(string(b)) == key {
				_ = os.Remove(latest)
			}
		}
		removed = append(removed, dir)
	}
	if len(removed) > 0 {
		fmt.Fprintf(log, "tree: removed %d tree(s) built by an older drover's recipe, unused for %s\n", len(removed), grace)
	}
	return removed
}

// specFields reads a tree's .spec note (key=value lines); an unreadable one has no fields.
func specFields(path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = v
		}
	}
	return fields
}

// removeCachedTree removes a tree of the cache with the notes beside it (.spec, .files.gz). The
// notes go only once the tree is gone: a tree left half removed keeps its .spec for the next prune.
func removeCachedTree(dir string) error {
	if err := removeTree(dir); err != nil {
		return err
	}
	for _, side := range []string{".spec", ".files.gz"} {
		_ = os.Remove(dir + side)
	}
	return nil
}
