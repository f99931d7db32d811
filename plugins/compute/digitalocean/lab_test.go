package digitalocean_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/drover-dev/drover/internal/cloudlab/dolab"
	"github.com/drover-dev/drover/internal/cloudlab/s3lab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/digitalocean"
	"github.com/drover-dev/drover/plugins/internal/doapi"
)

// fastRetry keeps the fault tests quick: 4 attempts, millisecond backoffs.
func fastRetry() doapi.Retry {
	return doapi.Retry{Attempts: 4, Base: time.Millisecond, Max: 4 * time.Millisecond, MaxRetryAfter: 5 * time.Second,
		AttemptTimeout: 5 * time.Second, CallTimeout: 20 * time.Second}
}

// newProvider is a provider of the fake, whose Spaces bucket is in spaces (nil: one of its own).
func newProvider(t testing.TB, c *dolab.Cloud, opts ...digitalocean.Option) *digitalocean.Provider {
	t.Helper()
	return newProviderSpaces(t, c, s3lab.New(t, s3lab.Options{}), opts...)
}

func newProviderSpaces(t testing.TB, c *dolab.Cloud, spaces *s3lab.Lab, opts ...digitalocean.Option) *digitalocean.Provider {
	t.Helper()
	cfg := &digitalocean.Config{Region: c.Region(), Size: "s-1vcpu-1gb", APIURL: c.URL(), Token: c.Token(), Tags: []string{"team-web"},
		SpacesBucket: "drover-images", SpacesEndpoint: spaces.URL, SpacesKey: spaces.AccessKeyID, SpacesSecret: spaces.SecretAccessKey}
	p, err := digitalocean.New(cfg, append([]digitalocean.Option{digitalocean.WithRetry(fastRetry()),
		digitalocean.WithPollInterval(20 * time.Millisecond), digitalocean.WithPageSize(3), digitalocean.WithSpacesClient(spaces.HTTPClient(), true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serveDisk serves a gzip-compressed disk of size bytes (random first MiB) on loopback, as a
// presigned URL would, and returns its URL and the raw bytes.
func serveDisk(t testing.TB, size int) (string, []byte) {
	raw := make([]byte, size)
	rand.Read(raw[:min(size, 1<<20)])
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/disk.raw.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(gz.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/disk.raw.gz", raw
}

// importImage imports a small disk through the API, as Publish does after its upload, and returns
// the Image instances launch from.
func importImage(t testing.TB, c *dolab.Cloud, p *digitalocean.Provider) compute.Image {
	t.Helper()
	url, _ := serveDisk(t, 2<<20)
	ctx := context.Background()
	img, _, err := p.Client().Images.Create(ctx, &godo.CustomImageCreateRequest{Name: "contract", Url: url, Region: c.Region(), Distribution: "Debian"})
	if err != nil {
		t.Fatalf("importing the test image: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, _, err := p.Client().Images.GetByID(ctx, img.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == "available" {
			break
		}
		if got.Status == "deleted" || time.Now().After(deadline) {
			t.Fatalf("importing the test image: status %s: %s", got.Status, got.ErrorMessage)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return compute.Image{Identity: "sha256:contract", Published: compute.PublishedImage{Identity: "sha256:contract", ID: strconv.Itoa(img.ID), Region: c.Region()}}
}
