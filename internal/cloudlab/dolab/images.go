package dolab

// Custom images, as the API reference documents them: POST /v2/images with {name, url, region,
// distribution, description, tags} answers 202 and the image with status "NEW"; DigitalOcean
// then downloads the URL (gzip or bzip2 compressed, or not), and the image becomes "available" in
// the region, or "deleted" with an error_message saying why the import failed. GET
// /v2/images/{id}, GET /v2/images (private=true for the account's images, tag_name to filter,
// paginated), DELETE /v2/images/{id} (204). Left out: qcow2, vmdk and vdi disks (refused with an
// error_message), image actions (transfer to another region), the distribution and application
// images of the catalog, the API's limits on size.

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Image is what the fake knows of one custom image, for tests.
type Image struct {
	ID           int
	Name         string
	Status       string // NEW, available or deleted
	ErrorMessage string
	Regions      []string
	Tags         []string
	Description  string
	URL          string
}

type image struct {
	id                                int
	name, distribution, description   string
	url, region, status, errorMessage string
	regions, tags                     []string
	created                           time.Time
	disk                              string // the raw disk, once available
	size                              int64
}

// Images returns the custom images that exist, by ID.
func (c *Cloud) Images() []Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Image
	for _, id := range sortedIDs(c.images) {
		i := c.images[id]
		out = append(out, Image{i.id, i.name, i.status, i.errorMessage, slices.Clone(i.regions), slices.Clone(i.tags), i.description, i.url})
	}
	return out
}

// ImageContent returns the raw disk of an available image.
func (c *Cloud) ImageContent(id int) ([]byte, error) {
	c.mu.Lock()
	i := c.images[id]
	c.mu.Unlock()
	if i == nil || i.disk == "" {
		return nil, fmt.Errorf("dolab: image %d is not available", id)
	}
	return os.ReadFile(i.disk)
}

var regionSlug = regexp.MustCompile(`^[a-z]{3}[0-9]$`)

type createImage struct {
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	Region       string   `json:"region"`
	Distribution string   `json:"distribution"`
	Description  string   `json:"description"`
	Tags         []string `json:"tags"`
}

func (c *Cloud) routeImages(r *http.Request, parts []string, body []byte) answer {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		q := r.URL.Query()
		var out []map[string]any
		for _, id := range sortedIDs(c.images) {
			i := c.images[id]
			if tag := q.Get("tag_name"); tag != "" && !slices.Contains(i.tags, tag) {
				continue
			}
			out = append(out, c.imageJSON(i))
		}
		return page(c, r, "images", out)
	case len(parts) == 0 && r.Method == http.MethodPost:
		return c.createImage(body)
	}
	id, err := strconv.Atoi(parts[0])
	if err != nil || c.images[id] == nil || len(parts) != 1 {
		return notFound()
	}
	switch r.Method {
	case http.MethodGet:
		return answer{http.StatusOK, map[string]any{"image": c.imageJSON(c.images[id])}}
	case http.MethodDelete:
		i := c.images[id]
		delete(c.images, id)
		if i.disk != "" {
			// Droplets copied it when they were created; the copy is theirs.
			_ = os.Remove(i.disk)
		}
		return answer{http.StatusNoContent, nil}
	}
	return c.bad("unexpected request %s %s", r.Method, r.URL.Path)
}

func (c *Cloud) createImage(body []byte) answer {
	var in createImage
	if err := decode(body, &in); err != nil {
		return c.bad("image create body: %v", err)
	}
	switch {
	case in.Name == "":
		return unprocessable("Name is required.")
	case in.URL == "":
		return unprocessable("Url is required.")
	case !regionSlug.MatchString(in.Region):
		return unprocessable("Region %q is invalid.", in.Region)
	}
	for _, t := range in.Tags {
		if !validTag(t) {
			return unprocessable("Tag %q is invalid.", t)
		}
		c.tags[t] = true
	}
	i := &image{id: c.newID(), name: in.Name, distribution: in.Distribution, description: in.Description, url: in.URL,
		region: in.Region, status: "NEW", tags: slices.Clone(in.Tags), created: time.Now()}
	if i.distribution == "" {
		i.distribution = "Unknown"
	}
	c.images[i.id] = i
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		path := filepath.Join(c.opts.Dir, "image-"+strconv.Itoa(i.id)+".raw")
		n, err := c.importURL(c.ctx, in.URL, path)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.images[i.id] != i { // deleted meanwhile
			_ = os.Remove(path)
			return
		}
		if err != nil {
			_ = os.Remove(path)
			i.status, i.errorMessage = "deleted", err.Error()
			return
		}
		i.status, i.disk, i.size, i.regions = "available", path, n, []string{i.region}
	}()
	return answer{http.StatusAccepted, map[string]any{"image": c.imageJSON(i)}}
}

// importURL downloads url, decompresses it and writes the raw disk to path; it returns the disk's
// size. Its errors are the image's error_message.
func (c *Cloud) importURL(ctx context.Context, url, path string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("the image URL is invalid: %v", err)
	}
	res, err := c.opts.Download.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the image could not be downloaded: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the image could not be downloaded: HTTP %d from its URL", res.StatusCode)
	}
	counted := &countingReader{r: res.Body, c: c}
	br := bufio.NewReaderSize(counted, 1<<20)
	magic, _ := br.Peek(4)
	var src io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("the image is not a valid gzip file: %v", err)
		}
		src = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		src = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte("QFI\xfb")):
		return 0, fmt.Errorf("the image is qcow2, which the fake does not import (raw only)")
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return 0, fmt.Errorf("the image is zstd compressed, which DigitalOcean does not accept (gzip, bzip2 or none)")
	}
	out, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := copySparse(out, src)
	if err == nil {
		err = out.Truncate(n)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("the image could not be read: %v", err)
	}
	if n == 0 || n%512 != 0 {
		return 0, fmt.Errorf("the image is %d bytes, not a disk (a whole number of 512-byte sectors)", n)
	}
	return n, nil
}

type countingReader struct {
	r io.Reader
	c *Cloud
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.c.mu.Lock()
	r.c.received += int64(n)
	r.c.mu.Unlock()
	return n, err
}

func (c *Cloud) imageJSON(i *image) map[string]any {
	m := map[string]any{"id": i.id, "name": i.name, "type": "custom", "distribution": i.distribution, "slug": nil,
		"public": false, "regions": nonNil(i.regions), "created_at": apiTime(i.created), "min_disk_size": (i.size + 1<<30 - 1) >> 30,
		"size_gigabytes": float64(i.size) / (1 << 30), "description": i.description, "tags": nonNil(i.tags),
		"status": i.status, "error_message": i.errorMessage}
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// AddImage adds an available custom image holding disk in the fake's region, behind the API's
// back (as if imported earlier), and returns its ID.
func (c *Cloud) AddImage(name string, disk []byte, tags ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := &image{id: c.newID(), name: name, distribution: "Unknown", region: c.opts.Region, status: "available",
		regions: []string{c.opts.Region}, tags: slices.Clone(tags), created: time.Now(), size: int64(len(disk))}
	i.disk = filepath.Join(c.opts.Dir, "image-"+strconv.Itoa(i.id)+".raw")
	if err := os.WriteFile(i.disk, disk, 0o644); err != nil {
		c.t.Fatalf("dolab: %v", err)
	}
	for _, t := range tags {
		c.tags[t] = true
	}
	c.images[i.id] = i
	return i.id
}
