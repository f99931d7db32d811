//go:build e2e

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// diffImages says where two raw disks differ, for a person chasing what made a build
// unreproducible: the differing 4 KiB blocks and the partitions they are in, the root file
// system's superblock fields that differ, and the files whose content, mode, owner or time differ.
func diffImages(t *testing.T, a, b string) string {
	t.Helper()
	var out strings.Builder
	parts := partitions(t, a)
	blocks := differingBlocks(t, a, b)
	byPart := map[string]int{}
	for _, off := range blocks {
		byPart[partitionOf(parts, off)]++
	}
	fmt.Fprintf(&out, "%d differing 4 KiB blocks: %v (first offsets %v)\n", len(blocks), byPart, firstN(blocks, 8))
	if len(parts) < 2 {
		return out.String()
	}
	ra, rb := extractRoot(t, a), extractRoot(t, b)
	sa, sb := superblock(t, ra), superblock(t, rb)
	for _, l := range lineDiff(sa, sb) {
		fmt.Fprintf(&out, "root superblock: %s\n", l)
	}
	ta, tb := rdump(t, ra), rdump(t, rb)
	files := treeDiff(t, ta, tb)
	fmt.Fprintf(&out, "%d root files differ:\n", len(files))
	for _, f := range firstN(files, 60) {
		fmt.Fprintf(&out, "  %s\n", f)
	}
	return out.String()
}

type partition struct {
	name        string
	start, size int64 // bytes
}

func partitions(t *testing.T, raw string) []partition {
	t.Helper()
	out, err := exec.Command("sfdisk", "--json", raw).Output()
	if err != nil {
		t.Fatalf("sfdisk: %v", err)
	}
	var pt struct {
		PartitionTable struct {
			Partitions []struct {
				Node        string
				Start, Size int64
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		t.Fatalf("sfdisk: %v", err)
	}
	var ps []partition
	for _, p := range pt.PartitionTable.Partitions {
		ps = append(ps, partition{name: filepath.Base(p.Node), start: p.Start * 512, size: p.Size * 512})
	}
	return ps
}

func partitionOf(ps []partition, off int64) string {
	for _, p := range ps {
		if off >= p.start && off < p.start+p.size {
			return p.name
		}
	}
	return "outside partitions (GPT headers)"
}

func differingBlocks(t *testing.T, a, b string) []int64 {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	var offs []int64
	ba, bb := make([]byte, 4096), make([]byte, 4096)
	for off := int64(0); ; off += 4096 {
		na, ea := io.ReadFull(fa, ba)
		nb, _ := io.ReadFull(fb, bb)
		if na == 0 && nb == 0 {
			return offs
		}
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			offs = append(offs, off)
		}
		if ea != nil {
			return offs
		}
	}
}

func superblock(t *testing.T, fs string) string {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", fs).Output()
	if err != nil {
		t.Fatalf("dumpe2fs: %v", err)
	}
	return string(out)
}

func lineDiff(a, b string) []string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			out = append(out, la[i]+"  |  "+lb[i])
		}
	}
	return out
}

// rdump copies a file system's tree out with debugfs (owners, modes and times kept).
func rdump(t *testing.T, img string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("debugfs", "-R", "rdump / "+dir, img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v\n%s", err, out)
	}
	return dir
}

// treeDiff lists the paths of two trees that differ in presence, type, mode, owner, mtime or content.
func treeDiff(t *testing.T, a, b string) []string {
	t.Helper()
	describe := func(root string) map[string]string {
		m := map[string]string{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			fi, err := os.Lstat(p)
			if err != nil {
				return nil
			}
			desc := fmt.Sprintf("%s %s", fi.Mode(), owner(fi))
			switch {
			case fi.Mode().IsRegular():
				desc += fmt.Sprintf(" mtime=%d sha256=%s", fi.ModTime().Unix(), fileSum(t, p)[:16])
			case fi.Mode()&fs.ModeSymlink != 0: // rdump gives links its own time
				target, _ := os.Readlink(p)
				desc += " -> " + target
			default:
				desc += fmt.Sprintf(" mtime=%d", fi.ModTime().Unix())
			}
			m[rel] = desc
			return nil
		})
		return m
	}
	da, db := describe(a), describe(b)
	var out []string
	for p, x := range da {
		if y, ok := db[p]; !ok {
			out = append(out, p+": only in the first")
		} else if x != y {
			out = append(out, p+": "+x+"  |  "+y)
		}
	}
	for p := range db {
		if _, ok := da[p]; !ok {
			out = append(out, p+": only in the second")
		}
	}
	sort.Strings(out)
	return out
}

func owner(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	return "?"
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}
