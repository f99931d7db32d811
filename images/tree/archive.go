package tree

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxReleaseBytes bounds a Release file read for the archive state (bookworm's is about 150 KB).
const maxReleaseBytes = 16 << 20

// archiveState says which package indexes the spec's sources serve now: for every source, the
// sha256 its Release file gives for COMPONENT/binary-ARCH/Packages* of each component. It changes
// when a package the tree could get changes (a security update, a point release) and not when the
// archive only re-signs its Release files, so a cached tree is rebuilt exactly when it could be
// out of date. A snapshot is immutable: its state is "" and nothing is fetched. The Release files
// are not verified here; they only name a cache entry, and apt verifies what it installs.
func archiveState(ctx context.Context, spec BaseSpec) (string, error) {
	n := spec.normalized()
	if n.Snapshot != "" {
		return "", nil
	}
	var lines []string
	for _, src := range n.Sources() {
		body, err := fetchRelease(ctx, src.URL, src.Suite)
		if err != nil {
			return "", err
		}
		for _, c := range n.Components {
			found := false
			for _, e := range releaseIndexes(body, c+"/binary-"+n.Arch+"/Packages") {
				lines = append(lines, src.URL+" "+src.Suite+" "+e)
				found = true
			}
			if !found {
				return "", fmt.Errorf("mirror %s suite %s lists no %s/binary-%s/Packages index in its Release file", src.URL, src.Suite, c, n.Arch)
			}
		}
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:]), nil
}

// fetchRelease reads a suite's InRelease (or Release) file from an http(s) or file mirror.
func fetchRelease(ctx context.Context, mirror, suite string) (string, error) {
	u, err := url.Parse(mirror)
	if err != nil {
		return "", fmt.Errorf("invalid mirror %q: %w", mirror, err)
	}
	base := strings.TrimRight(mirror, "/") + "/dists/" + suite + "/"
	var lastErr error
	for _, name := range []string{"InRelease", "Release"} {
		var r io.ReadCloser
		if u.Scheme == "file" {
			r, lastErr = os.Open(filepath.Join(u.Path, "dists", suite, name))
		} else {
			r, lastErr = httpGet(ctx, base+name)
		}
		if lastErr != nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(r, maxReleaseBytes))
		r.Close()
		if err != nil {
			return "", fmt.Errorf("mirror %s: reading %s%s: %w", mirror, base, name, err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("mirror %s: reading the Release file of suite %q: %w", mirror, suite, lastErr)
}

func httpGet(ctx context.Context, u string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, mirrorCheckTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	return cancelOnClose{resp.Body, cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// releaseIndexes returns the "SHA256 SIZE PATH" entries of a Release file's SHA256 section whose
// path starts with prefix (Packages, Packages.xz, Packages.gz).
func releaseIndexes(release, prefix string) []string {
	var out []string
	inSHA256 := false
	sc := bufio.NewScanner(strings.NewReader(release))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") {
			inSHA256 = strings.TrimSpace(line) == "SHA256:"
			continue
		}
		if !inSHA256 {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 3 && strings.HasPrefix(f[2], prefix) {
			out = append(out, strings.Join(f, " "))
		}
	}
	return out
}
