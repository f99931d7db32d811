package aws

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/drover-dev/drover/plugins/compute"
)

// blockStore is the part of the EBS direct APIs an upload talks to (PutSnapshotBlock,
// CompleteSnapshot), enough to check upload on its own: it verifies each block's checksum and
// the completion's count and LINEAR checksum, and fails a share of block requests with 500.
// The publish as a whole is tested against internal/cloudlab/awslab.
type blockStore struct {
	failPercent int64
	received    atomic.Int64 // bytes of block bodies received
	puts        atomic.Int64

	mu        sync.Mutex
	blocks    map[int32][sha256.Size]byte
	completed bool
	problem   error
}

func (s *blockStore) fail(format string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.problem == nil {
		s.problem = errors.New(format)
	}
}

func (s *blockStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPut && len(parts) == 4 && parts[2] == "blocks":
		s.puts.Add(1)
		if n, _ := rand.Int(rand.Reader, big.NewInt(100)); n.Int64() < s.failPercent {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"message":"injected"}`)
			return
		}
		idx, _ := strconv.Atoi(parts[3])
		body, _ := io.ReadAll(r.Body)
		s.received.Add(int64(len(body)))
		sum := sha256.Sum256(body)
		if len(body) != blockSize || r.Header.Get("x-amz-Data-Length") != strconv.Itoa(blockSize) {
			s.fail("a block is not 512 KiB")
		}
		if r.Header.Get("x-amz-Checksum") != base64.StdEncoding.EncodeToString(sum[:]) || r.Header.Get("x-amz-Checksum-Algorithm") != "SHA256" {
			s.fail("a block's checksum is wrong")
		}
		if allZero(body) {
			s.fail("a zero block was sent")
		}
		s.mu.Lock()
		s.blocks[int32(idx)] = sum
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost && len(parts) == 3 && parts[1] == "completion":
		s.mu.Lock()
		defer s.mu.Unlock()
		n, _ := strconv.Atoi(r.Header.Get("x-amz-ChangedBlocksCount"))
		var digests [][sha256.Size]byte
		for _, i := range slices.Sorted(maps.Keys(s.blocks)) {
			digests = append(digests, s.blocks[i])
		}
		if n != len(s.blocks) || r.Header.Get("x-amz-Checksum") != linearChecksum(digests) || r.Header.Get("x-amz-Checksum-Aggregation-Method") != "LINEAR" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"message":"checksum or count mismatch","Reason":"INVALID_CHECKSUM"}`)
			return
		}
		s.completed = true
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"Status":"pending"}`)
	default:
		http.NotFound(w, r)
	}
}

func newUploadFixture(t testing.TB, failPercent int64) (*blockStore, *Provider) {
	store := &blockStore{failPercent: failPercent, blocks: map[int32][sha256.Size]byte{}}
	srv := httptest.NewServer(store)
	t.Cleanup(srv.Close)
	p, err := New(context.Background(), &Config{Region: "us-east-1", InstanceType: "t3.micro"},
		WithCredentials(credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")),
		WithEndpoints(srv.URL, srv.URL), WithRetry(10, 20*time.Millisecond), WithUploadWorkers(8))
	if err != nil {
		t.Fatal(err)
	}
	return store, p
}

// sparseDisk is n blocks, every third one random, the rest zero.
func sparseDisk(t testing.TB, n int) (string, int64, int64) {
	data := make([]byte, n*blockSize)
	var inUse int64
	for i := 0; i < n; i += 3 {
		rand.Read(data[i*blockSize : (i+1)*blockSize])
		inUse += blockSize
	}
	return writeDisk(t, data), int64(len(data)), inUse
}

func TestUploadSendsOnlyNonZeroBlocksDespiteFailures(t *testing.T) {
	store, p := newUploadFixture(t, 10)
	path, size, inUse := sparseDisk(t, 60)
	blocks, _, err := scanBlocks(path, size)
	if err != nil {
		t.Fatal(err)
	}
	var events []compute.PublishProgress
	u := &upload{client: p.c.ebs, snapshot: "snap-1", path: path, blocks: blocks, workers: 8,
		progress: func(e compute.PublishProgress) { events = append(events, e) }}
	if err := u.run(context.Background()); err != nil {
		t.Fatalf("upload with 10%% of block requests failing: %v", err)
	}
	if store.problem != nil {
		t.Fatal(store.problem)
	}
	if !store.completed || len(store.blocks) != len(blocks) {
		t.Fatalf("completed %v with %d blocks, want %d", store.completed, len(store.blocks), len(blocks))
	}
	if got := store.received.Load(); got != inUse {
		t.Errorf("the store received %d bytes of a disk with %d bytes in use", got, inUse)
	}
	t.Logf("%d block requests for %d blocks (10%% failed and were retried)", store.puts.Load(), len(blocks))
	last := events[len(events)-1]
	if last.Phase != compute.PhaseUpload || last.Done != inUse || last.Total != inUse {
		t.Errorf("last progress %+v, want %d of %d bytes", last, inUse, inUse)
	}
	for i := 1; i < len(events); i++ {
		if events[i].Done < events[i-1].Done {
			t.Fatalf("progress went back: %+v then %+v", events[i-1], events[i])
		}
	}
}

func TestUploadCanceledMidway(t *testing.T) {
	store, p := newUploadFixture(t, 0)
	path, size, _ := sparseDisk(t, 60)
	blocks, _, _ := scanBlocks(path, size)
	ctx, cancel := context.WithCancel(context.Background())
	u := &upload{client: p.c.ebs, snapshot: "snap-1", path: path, blocks: blocks, workers: 2,
		progress: func(e compute.PublishProgress) {
			if e.Done >= 3*blockSize {
				cancel()
			}
		}}
	err := u.run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled upload: %v, want context.Canceled", err)
	}
	// A request the client gave up on may still be in the store's hands: read under its lock.
	store.mu.Lock()
	completed, n := store.completed, len(store.blocks)
	store.mu.Unlock()
	if completed {
		t.Error("a canceled upload completed the snapshot")
	}
	if n >= len(blocks) {
		t.Errorf("a canceled upload sent all %d blocks", n)
	}
}
