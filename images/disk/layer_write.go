package disk

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// applyLayer writes the layer into the ext4 filesystem at byte offset off
// of the raw disk: the freed files' blocks zeroed, then one debugfs session
// of removals, creations and attributes.
func applyLayer(ctx context.Context, raw string, off int64, l *layer, epoch time.Time, workDir string) error {
	dev := fmt.Sprintf("%s?offset=%d", raw, off)
	env := []string{"E2FSPROGS_FAKE_TIME=" + unixString(epoch)}
	if len(l.zero) > 0 {
		if err := zeroFreed(ctx, raw, dev, off, l.zero, env, workDir); err != nil {
			return err
		}
	}
	script, err := layerScript(l, workDir)
	if err != nil {
		return err
	}
	if script == "" {
		return nil
	}
	file := filepath.Join(workDir, "layer.debugfs")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return fmt.Errorf("disk: layer: %w", err)
	}
	out, err := run(ctx, command{step: "layer", args: []string{"debugfs", "-w", "-f", file, dev}, env: env})
	if err != nil {
		return err
	}
	if errs := debugfsErrors(out); len(errs) > 0 {
		return fmt.Errorf("disk: layer: debugfs -f %s: %d commands failed:\n%s\nhint: if the filesystem is full, raise Spec.MinRootSize or Spec.Headroom",
			file, len(errs), lastLines(strings.Join(errs, "\n"), outputTailLines))
	}
	return nil
}

// zeroFreed asks debugfs for the data blocks of the files whose inodes the
// layer frees and punches them out of the raw disk (they read as zeros).
func zeroFreed(ctx context.Context, raw, dev string, off int64, paths []string, env []string, workDir string) error {
	var b strings.Builder
	for _, p := range paths {
		q, err := debugfsQuote(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "blocks %s\n", q)
	}
	file := filepath.Join(workDir, "blocks.debugfs")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("disk: layer: %w", err)
	}
	out, err := run(ctx, command{step: "layer", args: []string{"debugfs", "-f", file, dev}, env: env})
	if err != nil {
		return err
	}
	var blocks []int64
	var bad []string
	for _, line := range debugfsErrors(out) {
		ok := true
		var nums []int64
		for _, f := range strings.Fields(line) {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				ok = false
				break
			}
			nums = append(nums, n)
		}
		if !ok {
			bad = append(bad, line)
			continue
		}
		blocks = append(blocks, nums...)
	}
	if len(bad) > 0 {
		return fmt.Errorf("disk: layer: debugfs -f %s: %d commands failed:\n%s", file, len(bad), lastLines(strings.Join(bad, "\n"), outputTailLines))
	}
	f, err := os.OpenFile(raw, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("disk: layer: %w", err)
	}
	defer f.Close()
	const punchHole, keepSize = 0x02, 0x01
	for _, blk := range blocks {
		if err := syscall.Fallocate(int(f.Fd()), punchHole|keepSize, off+blk*blockSize, blockSize); err != nil {
			return fmt.Errorf("disk: layer: zeroing block %d: %w", blk, err)
		}
	}
	return f.Close()
}

// layerScript renders the debugfs commands of a layer: removals, then the
// new and changed entries (parents first) with their attributes, then the
// link counts of hard-linked new files. Extended attribute values go into
// files in workDir, read by ea_set -f.
func layerScript(l *layer, workDir string) (string, error) {
	var b strings.Builder
	for _, r := range l.removals {
		q, err := debugfsQuote(r.path)
		if err != nil {
			return "", err
		}
		if r.dir {
			fmt.Fprintf(&b, "rmdir %s\n", q)
		} else {
			fmt.Fprintf(&b, "rm %s\n", q)
		}
	}
	links := map[string]int{}
	var linkOrder []string
	xattrFiles := 0
	for _, e := range l.entries {
		q, err := debugfsQuote(e.path)
		if err != nil {
			return "", err
		}
		if e.create {
			dir, err := debugfsQuote(path.Dir(e.path))
			if err != nil {
				return "", err
			}
			name, err := debugfsQuote(path.Base(e.path))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "cd %s\n", dir)
			switch fileType(e.st.Mode) {
			case syscall.S_IFDIR:
				fmt.Fprintf(&b, "mkdir %s\n", name)
			case syscall.S_IFREG:
				if e.linkTo != "" {
					to, err := debugfsQuote(e.linkTo)
					if err != nil {
						return "", err
					}
					fmt.Fprintf(&b, "ln %s %s\n", to, name)
					if links[e.linkTo] == 0 {
						linkOrder = append(linkOrder, e.linkTo)
					}
					links[e.linkTo]++
					continue // the first name carries the attributes
				}
				host, err := debugfsQuote(e.host)
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, "write %s %s\n", host, name)
			case syscall.S_IFLNK:
				target, err := debugfsQuote(e.target)
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, "symlink %s %s\n", name, target)
			case syscall.S_IFCHR, syscall.S_IFBLK:
				kind := "c"
				if fileType(e.st.Mode) == syscall.S_IFBLK {
					kind = "b"
				}
				fmt.Fprintf(&b, "mknod %s %s %d %d\n", name, kind, major(e.st.Rdev), minor(e.st.Rdev))
			case syscall.S_IFIFO:
				fmt.Fprintf(&b, "mknod %s p\n", name)
			default:
				return "", fmt.Errorf("disk: layer: %s is a %v, which the root filesystem cannot hold (remove it in the role's steps)", e.path, e.mode.Type())
			}
		}
		t := unixString(e.mtime)
		fmt.Fprintf(&b, "sif %s mode 0%o\nsif %s uid %d\nsif %s gid %d\nsif %s mtime @%s\nsif %s atime @%s\nsif %s ctime @%s\n",
			q, e.st.Mode, q, e.st.Uid, q, e.st.Gid, q, t, q, t, q, t)
		for _, name := range e.xattrsRemoved {
			fmt.Fprintf(&b, "ea_rm %s %s\n", q, name)
		}
		names := make([]string, 0, len(e.xattrs))
		for k := range e.xattrs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			xattrFiles++
			f := filepath.Join(workDir, fmt.Sprintf("xattr-%d", xattrFiles))
			if err := os.WriteFile(f, e.xattrs[name], 0o644); err != nil {
				return "", fmt.Errorf("disk: layer: %w", err)
			}
			fq, err := debugfsQuote(f)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "ea_set -f %s %s %s\n", fq, q, name)
		}
	}
	for _, p := range linkOrder {
		q, _ := debugfsQuote(p)
		fmt.Fprintf(&b, "sif %s links_count %d\n", q, links[p]+1)
	}
	return b.String(), nil
}

// debugfsQuote quotes a path the way debugfs' parser reads it (a quote
// inside quotes is doubled). A newline cannot be quoted.
func debugfsQuote(p string) (string, error) {
	if strings.ContainsAny(p, "\n\r") {
		return "", fmt.Errorf("disk: layer: the path %q has a line break, which debugfs cannot name", p)
	}
	return `"` + strings.ReplaceAll(p, `"`, `""`) + `"`, nil
}

func major(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func minor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }

// setUUID gives the filesystem at byte offset off of raw its own UUID;
// tune2fs rewrites every metadata checksum, which metadata_csum seeds with
// the UUID.
func setUUID(ctx context.Context, raw string, off int64, id uuid, epoch time.Time) error {
	_, err := run(ctx, command{
		step: "root filesystem uuid",
		args: []string{"tune2fs", "-U", id.String(), fmt.Sprintf("%s?offset=%d", raw, off)},
		env:  []string{"E2FSPROGS_FAKE_TIME=" + unixString(epoch)},
	})
	return err
}
