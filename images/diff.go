package images

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Diff is what changed between two images.
type Diff struct {
	From, To string          // identities
	Added    []Package       `json:"added"`
	Removed  []Package       `json:"removed"`
	Changed  []PackageChange `json:"changed"`
	Files    []FileChange    `json:"files"`
}

// PackageChange is a package whose version changed.
type PackageChange struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// FileChange is a file of the tree that was added, removed or whose content or mode changed.
type FileChange struct {
	Path   string `json:"path"`
	Change string `json:"change"` // added, removed, changed
}

// DiffImages compares two images' package lists and file indexes.
func (c *Catalog) DiffImages(a, b *Manifest) (*Diff, error) {
	d := &Diff{From: a.Identity, To: b.Identity, Added: []Package{}, Removed: []Package{}, Changed: []PackageChange{}, Files: []FileChange{}}
	pa, pb := map[string]Package{}, map[string]Package{}
	for _, p := range a.Packages {
		pa[p.Name+":"+p.Arch] = p
	}
	for _, p := range b.Packages {
		pb[p.Name+":"+p.Arch] = p
	}
	for k, p := range pb {
		if old, ok := pa[k]; !ok {
			d.Added = append(d.Added, p)
		} else if old.Version != p.Version {
			d.Changed = append(d.Changed, PackageChange{Name: p.Name, From: old.Version, To: p.Version})
		}
	}
	for k, p := range pa {
		if _, ok := pb[k]; !ok {
			d.Removed = append(d.Removed, p)
		}
	}
	sort.Slice(d.Added, func(i, j int) bool { return d.Added[i].Name < d.Added[j].Name })
	sort.Slice(d.Removed, func(i, j int) bool { return d.Removed[i].Name < d.Removed[j].Name })
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].Name < d.Changed[j].Name })

	fa, err := c.fileIndex(a)
	if err != nil {
		return nil, err
	}
	fb, err := c.fileIndex(b)
	if err != nil {
		return nil, err
	}
	for path, sum := range fb {
		if old, ok := fa[path]; !ok {
			d.Files = append(d.Files, FileChange{Path: path, Change: "added"})
		} else if old != sum {
			d.Files = append(d.Files, FileChange{Path: path, Change: "changed"})
		}
	}
	for path := range fa {
		if _, ok := fb[path]; !ok {
			d.Files = append(d.Files, FileChange{Path: path, Change: "removed"})
		}
	}
	sort.Slice(d.Files, func(i, j int) bool { return d.Files[i].Path < d.Files[j].Path })
	return d, nil
}

// fileIndex reads an image's file index: lines "path<TAB>mode<TAB>sha256-or-link-target", gzipped.
func (c *Catalog) fileIndex(m *Manifest) (map[string]string, error) {
	if m.Files == "" {
		return map[string]string{}, nil
	}
	f, err := os.Open(filepath.Join(c.ImageDir(m.Identity), m.Files))
	if err != nil {
		return nil, fmt.Errorf("images: file index of %s: %w", m.ShortID(), err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("images: file index of %s: %w", m.ShortID(), err)
	}
	return ReadFileIndex(zr)
}

// ReadFileIndex parses a file index stream into path -> the rest of its line.
func ReadFileIndex(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		path, rest, ok := strings.Cut(sc.Text(), "\t")
		if ok {
			out[path] = rest
		}
	}
	return out, sc.Err()
}
