package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lockPoll is how often a build waiting for another build of the same
// base checks its lock; polling, unlike a blocking flock, can be cancelled.
const lockPoll = 250 * time.Millisecond

// Cache keeps base trees and downloaded packages in Dir:
//
//	Dir/trees/<key>/         a finished base tree (the root directory); key is the
//	                         spec's Key, and for a live mirror "-" and the archive's
//	                         state (treeKey), so an update in the archive makes a new tree
//	Dir/trees/<key>.spec     what it was built from, for people
//	Dir/trees/<key>.files.gz its file index, written by its users (rootfs) once
//	Dir/trees/<spec key>.latest  the newest tree of a spec, for builds offline
//	Dir/trees/<key>.tmp-*/   a build in progress (or killed), never used
//	                         (a tree's directory mtime is its last use: an archive update's
//	                         new tree of a spec prunes the spec's older trees, pruneSuperseded,
//	                         and any new tree prunes the trees of other recipes, pruneOtherRecipes)
//	Dir/debs/<suite>-<arch>/ downloaded .debs, reused by every build
//	Dir/locks/<key>.lock     flock'ed while a build of <key> runs
//
// A tree in the cache is shared: copy it (Copy) before changing it.
type Cache struct{ Dir string }

// Base returns the base tree for spec, building it with mmdebstrap on the
// first request (hit false) and from the cache afterwards (hit true). The
// build happens in a temporary directory next to the cache entry and is
// renamed into place when complete, so a failed or killed build leaves
// nothing that looks finished; concurrent requests for the same spec, in
// this process or others, wait for one build. mmdebstrap's output goes to
// log. Errors are StepErrors of step "bootstrap".
func (c *Cache) Base(ctx context.Context, spec BaseSpec, log io.Writer) (dir string, hit bool, err error) {
	dir, hit, err = c.base(ctx, spec, log)
	return dir, hit, stepErr("bootstrap", err)
}

func (c *Cache) base(ctx context.Context, spec BaseSpec, log io.Writer) (string, bool, error) {
	if log == nil {
		log = io.Discard
	}
	n, err := spec.Normalize()
	if err != nil {
		return "", false, err
	}
	if c.Dir == "" {
		return "", false, errors.New("cache directory not set")
	}
	cacheDir, err := filepath.Abs(c.Dir)
	if err != nil {
		return "", false, err
	}
	trees := filepath.Join(cacheDir, "trees")
	debs := filepath.Join(cacheDir, "debs", n.Suite+"-"+n.Arch)
	for _, d := range []string{trees, debs, filepath.Join(cacheDir, "locks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", false, fmt.Errorf("cache directory: %w", err)
		}
	}
	key, err := treeKey(ctx, n, trees, log)
	if err != nil {
		return "", false, err
	}
	final := filepath.Join(trees, key)
	if isDir(final) {
		markUsed(final, time.Now())
		return final, true, nil
	}
	unlock, err := lockKey(ctx, filepath.Join(cacheDir, "locks", key+".lock"), log)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if isDir(final) { // built while we waited
		return final, true, nil
	}
	// Leftovers of killed builds of this key: nobody else builds it now.
	stale, _ := filepath.Glob(filepath.Join(trees, key+".tmp-*"))
	for _, s := range stale {
		if err := removeTree(s); err != nil {
			return "", false, fmt.Errorf("remove an interrupted build: %w", err)
		}
	}
	fmt.Fprintf(log, "tree: building base %s (%s)\n", key[:12], n)
	start := time.Now()
	work, err := os.MkdirTemp(trees, key+".tmp-")
	if err != nil {
		return "", false, fmt.Errorf("cache directory: %w", err)
	}
	defer func() { // after the rename only the .debs staging is left
		if err := removeTree(work); err != nil {
			fmt.Fprintf(log, "tree: warning: %v\n", err)
		}
	}()
	// MkdirTemp makes it 0700; apt's unprivileged _apt user must get
	// through it to download into the tree.
	if err := os.Chmod(work, 0o755); err != nil {
		return "", false, fmt.Errorf("cache directory: %w", err)
	}
	b := build{spec: n, root: filepath.Join(work, "root"), debs: debs, debsOut: filepath.Join(work, "debs"), log: log}
	if err := b.run(ctx); err != nil {
		return "", false, err
	}
	note := fmt.Sprintf("key=%s\nspec=%s\nspec_key=%s\nrecipe=%s\nbuilt=%s\ntook=%s\n", key, n, n.Key(), keyVersion, time.Now().UTC().Format(time.RFC3339), time.Since(start).Round(time.Second))
	if err := os.WriteFile(filepath.Join(trees, key+".spec"), []byte(note), 0o644); err != nil {
		return "", false, fmt.Errorf("cache directory: %w", err)
	}
	if err := os.Rename(b.root, final); err != nil {
		return "", false, fmt.Errorf("move the finished tree into the cache: %w", err)
	}
	fmt.Fprintf(log, "tree: base %s built in %s\n", key[:12], time.Since(start).Round(time.Second))
	if key != n.Key() {
		writeLatest(trees, n, key, log)
		pruneSuperseded(trees, n.Key(), key, SupersededGrace, time.Now(), log)
	}
	pruneOtherRecipes(trees, SupersededGrace, time.Now(), log)
	return final, false, nil
}

// treeKey is the cache entry of spec's tree as the archive is now: the spec's Key, and for a live
// mirror "-" and the first 16 hex digits of archiveState, so that an update in any of the suites
// makes a new tree while a re-signed Release file does not. When the archive cannot be asked, the
// newest tree built for the spec (trees/<spec key>.latest) is used, with a warning in the log; with
// none, the spec's Key alone, and the build's own mirror checks report the problem.
func treeKey(ctx context.Context, n BaseSpec, trees string, log io.Writer) (string, error) {
	state, err := archiveState(ctx, n)
	switch {
	case err == nil && state == "":
		return n.Key(), nil
	case err == nil:
		return n.Key() + "-" + state[:16], nil
	case ctx.Err() != nil:
		return "", ctx.Err()
	}
	if b, rerr := os.ReadFile(filepath.Join(trees, n.Key()+".latest")); rerr == nil {
		latest := strings.TrimSpace(string(b))
		if strings.HasPrefix(latest, n.Key()) && !strings.ContainsAny(latest, "/.") && isDir(filepath.Join(trees, latest)) {
			fmt.Fprintf(log, "tree: warning: cannot tell whether the archive changed (%v); using base %s, the newest built\n", err, latest[:12])
			return latest, nil
		}
	}
	return n.Key(), nil
}

// writeLatest records key as the newest tree of spec. A failure costs only the offline fallback.
func writeLatest(trees string, n BaseSpec, key string, log io.Writer) {
	p := filepath.Join(trees, n.Key()+".latest")
	tmp := fmt.Sprintf("%s.tmp-%d", p, os.Getpid())
	if err := os.WriteFile(tmp, []byte(key+"\n"), 0o644); err == nil {
		err = os.Rename(tmp, p)
		if err == nil {
			return
		}
	}
	_ = os.Remove(tmp)
	fmt.Fprintf(log, "tree: warning: could not record the newest base of %s\n", n.Key()[:12])
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// lockKey takes an exclusive flock on path, waiting while another build
// holds it, and returns the unlock function.
func lockKey(ctx context.Context, path string, log io.Writer) (func(), error) {
	if log == nil {
		log = io.Discard
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !told {
			fmt.Fprintf(log, "tree: waiting for another build of the same base (%s)\n", path)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// harvestDebs moves the .debs a build downloaded (synced out of its
// /var/cache/apt/archives into from) into the shared cache dir to. Each
// file is renamed into place whole, so a build syncing the cache in at the
// same moment never copies half a package. Failures only cost a download
// next time, so they are logged, not returned.
func harvestDebs(from, to string, log io.Writer) {
	entries, err := os.ReadDir(from)
	if err != nil {
		fmt.Fprintf(log, "tree: warning: keeping downloaded packages: %v\n", err)
		return
	}
	kept := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".deb") {
			continue
		}
		dst := filepath.Join(to, e.Name())
		if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(filepath.Join(from, e.Name()), dst); err != nil {
			fmt.Fprintf(log, "tree: warning: keeping downloaded package %s: %v\n", e.Name(), err)
			continue
		}
		kept++
	}
	if kept > 0 {
		fmt.Fprintf(log, "tree: kept %d new packages in %s\n", kept, to)
	}
}
