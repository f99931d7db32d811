package s3lab

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// serve authenticates, counts, applies faults and the part-size rule, then hands the request to
// gofakes3 in path style.
func (l *Lab) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "IncompleteBody", "The request body could not be read: "+err.Error())
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if e := l.authenticate(r, body); e != nil {
		writeError(w, e.Status, e.Code, e.Message)
		return
	}
	l.toPathStyle(r)
	op := operation(r)
	l.mu.Lock()
	l.counts[op]++
	f, faulted := l.nextFault(op)
	l.mu.Unlock()
	if faulted {
		l.applyFault(w, r, op, body, f)
		return
	}
	l.forward(w, r, op, body)
}

// forward hands a checked request to gofakes3, with the lab's additions for some operations.
func (l *Lab) forward(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	switch op {
	case "CompleteMultipartUpload":
		if e := l.checkPartSizes(r.URL.Query().Get("uploadId"), body); e != nil {
			writeError(w, e.Status, e.Code, e.Message)
			return
		}
	case "UploadPart":
		rec := &statusRecorder{ResponseWriter: w}
		l.fake.ServeHTTP(rec, r)
		if rec.status == 0 || rec.status == http.StatusOK {
			l.mu.Lock()
			l.partSize[r.URL.Query().Get("uploadId")+"/"+r.URL.Query().Get("partNumber")] = int64(len(body))
			l.mu.Unlock()
		}
		return
	}
	l.fake.ServeHTTP(w, r)
}

// toPathStyle rewrites a virtual-host-style request ("bucket.s3lab.test") to path style, as
// gofakes3 expects.
func (l *Lab) toPathStyle(r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	bucket, ok := strings.CutSuffix(host, "."+VirtualHostBase)
	if !ok || bucket == "" {
		return
	}
	r.URL.Path = "/" + bucket + r.URL.Path
	r.URL.RawPath = ""
}

type completeRequest struct {
	Parts []struct {
		PartNumber int `xml:"PartNumber"`
	} `xml:"Part"`
}

// checkPartSizes refuses a CompleteMultipartUpload whose parts, all but the last, are not at
// least MinPartSize, with S3's EntityTooSmall.
func (l *Lab) checkPartSizes(uploadID string, body []byte) *authError {
	var in completeRequest
	if err := xml.Unmarshal(body, &in); err != nil {
		return nil // gofakes3 answers MalformedXML itself
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, p := range in.Parts {
		size, ok := l.partSize[fmt.Sprintf("%s/%d", uploadID, p.PartNumber)]
		if ok && i < len(in.Parts)-1 && size < l.minPart {
			return &authError{http.StatusBadRequest, "EntityTooSmall",
				fmt.Sprintf("Your proposed upload is smaller than the minimum allowed object size: part %d is %d bytes, the minimum is %d.", p.PartNumber, size, l.minPart)}
		}
	}
	return nil
}

// operation names a path-style request the way S3's API reference does.
func operation(r *http.Request) string {
	q := r.URL.Query()
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	m := r.Method
	switch {
	case q.Has("uploadId"):
		return map[string]string{"GET": "ListParts", "PUT": "UploadPart", "DELETE": "AbortMultipartUpload", "POST": "CompleteMultipartUpload"}[m]
	case q.Has("uploads"):
		return map[string]string{"GET": "ListMultipartUploads", "POST": "CreateMultipartUpload"}[m]
	case key != "":
		if m == "PUT" && r.Header.Get("X-Amz-Copy-Source") != "" {
			return "CopyObject"
		}
		return map[string]string{"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}[m]
	case bucket != "":
		if m == "POST" && q.Has("delete") {
			return "DeleteObjects"
		}
		return map[string]string{"GET": "ListObjects", "HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}[m]
	}
	return "ListBuckets"
}

// writeError answers with S3's XML error document.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", xmlEscape(code), xmlEscape(message))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}
