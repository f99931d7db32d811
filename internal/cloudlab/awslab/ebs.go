package awslab

// The EBS direct APIs (REST/JSON, version 2019-11-02), as documented at
// https://docs.aws.amazon.com/ebs/latest/APIReference/ and as service/ebs v1.43.5 sends them:
// StartSnapshot (POST /snapshots, 201), PutSnapshotBlock (PUT /snapshots/{id}/blocks/{index},
// 201, the block as the body, its SHA-256 in x-amz-Checksum, the payload unsigned),
// CompleteSnapshot (POST /snapshots/completion/{id}, 202), ListSnapshotBlocks and
// GetSnapshotBlock (GET /snapshots/{id}/blocks[/{index}]). Errors are JSON documents with
// __type, Message and Reason, and the X-Amzn-ErrorType header.
//
// Left out: ListChangedBlocks, ParentSnapshotId (incremental snapshots), encryption (Encrypted,
// KmsKeyArn) and block tokens that expire.

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// BlockSize is the EBS direct APIs' block: 512 KiB.
const BlockSize = 512 << 10

const gib = 1 << 30

// Snapshot is what the fake knows of one snapshot, for tests.
type Snapshot struct {
	ID          string
	State       string // pending, completed or error
	VolumeSize  int64  // GiB
	Description string
	Tags        map[string]string
	Blocks      int // blocks written
	Started     time.Time
}

type snapshot struct {
	id, description, clientToken string
	volumeID                     string // the volume CreateSnapshot copied, "" for EBS direct snapshots
	request                      string // StartSnapshot's parameters, for ClientToken reuse
	state                        string
	volumeSize                   int64
	tags                         map[string]string
	started                      time.Time
	timeout                      time.Duration
	file                         *os.File
	sums                         map[int32][sha256.Size]byte
	sealed                       bool // CompleteSnapshot was called: no more writes
	pendingPolls                 int  // DescribeSnapshots polls left before completed
}

// Snapshots returns the snapshots the fake holds.
func (c *Cloud) Snapshots() []Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Snapshot
	for _, s := range c.snapshots {
		c.expire(s)
		out = append(out, Snapshot{ID: s.id, State: s.state, VolumeSize: s.volumeSize, Description: s.description,
			Tags: cloneTags(s.tags), Blocks: len(s.sums), Started: s.started})
	}
	return out
}

// expire moves a snapshot left pending past its StartSnapshot Timeout to error; c.mu is held.
func (c *Cloud) expire(s *snapshot) {
	if s.state == "pending" && !s.sealed && time.Since(s.started) > s.timeout {
		s.state = "error"
	}
}

type ebsError struct {
	status            int
	code, msg, reason string
}

func (e *ebsError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	doc := map[string]string{"__type": e.code, "Message": e.msg}
	if e.reason != "" {
		doc["Reason"] = e.reason
	}
	_ = json.NewEncoder(w).Encode(doc)
}

func validation(reason, format string, args ...any) *ebsError {
	return &ebsError{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, args...), reason}
}

func notFound(id string) *ebsError {
	return &ebsError{http.StatusNotFound, "ResourceNotFoundException", "The snapshot '" + id + "' does not exist.", "SNAPSHOT_NOT_FOUND"}
}

// ebsRoute names the action of a request and its path parameters.
func ebsRoute(r *http.Request) (action, id, index string) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "snapshots":
		return "StartSnapshot", "", ""
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "snapshots" && parts[1] == "completion":
		return "CompleteSnapshot", parts[2], ""
	case r.Method == http.MethodPut && len(parts) == 4 && parts[0] == "snapshots" && parts[2] == "blocks":
		return "PutSnapshotBlock", parts[1], parts[3]
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "snapshots" && parts[2] == "blocks":
		return "ListSnapshotBlocks", parts[1], ""
	case r.Method == http.MethodGet && len(parts) == 4 && parts[0] == "snapshots" && parts[2] == "blocks":
		return "GetSnapshotBlock", parts[1], parts[3]
	}
	return "", "", ""
}

func (c *Cloud) serveEBS(w http.ResponseWriter, r *http.Request) {
	action, id, index := ebsRoute(r)
	body, err := io.ReadAll(io.LimitReader(r.Body, 2*BlockSize))
	entry := Request{Time: time.Now(), Service: "ebs", Action: action, Path: r.URL.Path, Params: r.URL.Query()}
	fail := func(e *ebsError) {
		entry.Status, entry.Code = e.status, e.code
		c.record(entry)
		e.write(w)
	}
	if err != nil {
		fail(validation("INVALID_BLOCK", "reading the request body: %v", err))
		return
	}
	keyID, aerr := c.verify(r, body, "ebs", action == "PutSnapshotBlock")
	entry.KeyID, entry.Verified = keyID, aerr == nil
	if aerr != nil {
		code := map[string]string{"SignatureDoesNotMatch": "InvalidSignatureException", "InvalidClientTokenId": "UnrecognizedClientException"}[aerr.code]
		if code == "" {
			code = aerr.code
		}
		fail(&ebsError{status: aerr.status, code: code, msg: aerr.msg})
		return
	}
	if action == "" {
		fail(&ebsError{http.StatusNotFound, "UnknownOperationException", "no operation " + r.Method + " " + r.URL.Path, ""})
		return
	}
	c.mu.Lock()
	f, faulted := c.nextFault("ebs", action)
	if !faulted && action == "PutSnapshotBlock" && c.throttle.throttled() {
		f, faulted = EBSThrottling, true
	}
	c.mu.Unlock()
	if faulted {
		fail(&ebsError{status: f.Status, code: f.Code, msg: f.Message})
		return
	}
	var status int
	var out any
	var e *ebsError
	switch action {
	case "StartSnapshot":
		status, out, e = c.startSnapshot(body)
	case "PutSnapshotBlock":
		status, e = c.putSnapshotBlock(w, r, id, index, body)
	case "CompleteSnapshot":
		status, out, e = c.completeSnapshot(r, id)
	case "ListSnapshotBlocks":
		status, out, e = c.listSnapshotBlocks(r, id)
	case "GetSnapshotBlock":
		e = c.getSnapshotBlock(w, id, index)
		status = http.StatusOK
	}
	if e != nil {
		fail(e)
		return
	}
	entry.Status = status
	c.record(entry)
	if out == nil {
		if action != "GetSnapshotBlock" {
			w.WriteHeader(status)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

type ebsTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type startSnapshotRequest struct {
	VolumeSize       *int64   `json:"VolumeSize"`
	Timeout          *int32   `json:"Timeout"`
	Tags             []ebsTag `json:"Tags"`
	Description      string   `json:"Description"`
	ClientToken      string   `json:"ClientToken"`
	Encrypted        bool     `json:"Encrypted"`
	ParentSnapshotId string   `json:"ParentSnapshotId"`
	KmsKeyArn        string   `json:"KmsKeyArn"`
}

type startSnapshotResponse struct {
	BlockSize   int32    `json:"BlockSize"`
	Description string   `json:"Description,omitempty"`
	OwnerID     string   `json:"OwnerId"`
	SnapshotID  string   `json:"SnapshotId"`
	StartTime   float64  `json:"StartTime"`
	Status      string   `json:"Status"`
	Tags        []ebsTag `json:"Tags,omitempty"`
	VolumeSize  int64    `json:"VolumeSize"`
}

// startSnapshot starts a pending snapshot. A ClientToken already used with the same parameters
// answers the snapshot it started; with other parameters, ConflictException.
func (c *Cloud) startSnapshot(body []byte) (int, any, *ebsError) {
	var req startSnapshotRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, nil, validation("INVALID_PARAMETER_VALUE", "the request body is not a StartSnapshot document: %v", err)
	}
	switch {
	case req.VolumeSize == nil || *req.VolumeSize < 1 || *req.VolumeSize > 65536:
		return 0, nil, validation("INVALID_VOLUME_SIZE", "VolumeSize must be between 1 and 65536 GiB")
	case req.Timeout != nil && (*req.Timeout < 10 || *req.Timeout > 4320):
		return 0, nil, validation("INVALID_PARAMETER_VALUE", "Timeout must be between 10 and 4320 minutes")
	case req.Encrypted || req.ParentSnapshotId != "" || req.KmsKeyArn != "":
		return 0, nil, validation("INVALID_PARAMETER_VALUE", "awslab does not do encrypted or incremental snapshots")
	case len(req.Description) > 255:
		return 0, nil, validation("INVALID_PARAMETER_VALUE", "Description is longer than 255 characters")
	}
	timeout := 60 * time.Minute
	if req.Timeout != nil {
		timeout = time.Duration(*req.Timeout) * time.Minute
	}
	tags := map[string]string{}
	for _, t := range req.Tags {
		if t.Key == "" || strings.HasPrefix(t.Key, "aws:") {
			return 0, nil, validation("INVALID_TAG", "tag key %q is not allowed", t.Key)
		}
		tags[t.Key] = t.Value
	}
	params, _ := json.Marshal(struct {
		V int64
		T time.Duration
		D string
		G map[string]string
	}{*req.VolumeSize, timeout, req.Description, tags})
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.ClientToken != "" {
		for _, s := range c.snapshots {
			if s.clientToken != req.ClientToken {
				continue
			}
			if s.request != string(params) {
				return 0, nil, &ebsError{http.StatusConflict, "ConflictException", "The request uses the same client token as a previous, but non-identical request.", ""}
			}
			c.expire(s)
			return http.StatusCreated, snapshotResponse(c, s), nil
		}
	}
	s := &snapshot{id: newID("snap"), description: req.Description, clientToken: req.ClientToken, request: string(params),
		state: "pending", volumeSize: *req.VolumeSize, tags: tags, started: time.Now().UTC(), timeout: timeout,
		sums: map[int32][sha256.Size]byte{}}
	f, err := os.Create(c.opts.Dir + "/" + s.id + ".blocks")
	if err != nil {
		return 0, nil, &ebsError{http.StatusInternalServerError, "InternalServerException", err.Error(), ""}
	}
	if err := f.Truncate(s.volumeSize * gib); err != nil {
		f.Close()
		return 0, nil, &ebsError{http.StatusInternalServerError, "InternalServerException", err.Error(), ""}
	}
	s.file = f
	c.snapshots[s.id] = s
	return http.StatusCreated, snapshotResponse(c, s), nil
}

func snapshotResponse(c *Cloud, s *snapshot) startSnapshotResponse {
	out := startSnapshotResponse{BlockSize: BlockSize, Description: s.description, OwnerID: c.opts.Account,
		SnapshotID: s.id, StartTime: float64(s.started.UnixMilli()) / 1000, Status: s.state, VolumeSize: s.volumeSize}
	for _, k := range sortedKeys(s.tags) {
		out.Tags = append(out.Tags, ebsTag{k, s.tags[k]})
	}
	return out
}
