package awslab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// authError is why a request's signature was refused, with the error code AWS answers.
type authError struct {
	code, msg string
	status    int
}

var authzRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$`)

// unsignedPayload is the payload hash of a request whose body is not signed: EBS's
// PutSnapshotBlock, whose block is covered by its x-amz-Checksum instead (the ebs client sends
// X-Amz-Content-Sha256: UNSIGNED-PAYLOAD and signs that header).
const unsignedPayload = "UNSIGNED-PAYLOAD"

// verify checks r's SigV4 signature as AWS does (Signature Version 4, header form): the credential
// scope (this region and service), the time (15 minutes either way), and the signature computed
// again over the request as received with the secret key of its access key ID. The payload hash is
// the body's SHA-256, or UNSIGNED-PAYLOAD when the request says so in a signed
// X-Amz-Content-Sha256 header and allowUnsigned. It returns the access key ID; a nil error means
// the signature holds.
func (c *Cloud) verify(r *http.Request, body []byte, service string, allowUnsigned bool) (string, *authError) {
	m := authzRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "", &authError{"IncompleteSignature", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.", http.StatusBadRequest}
	}
	keyID, date, region, svc, signed := m[1], m[2], m[3], m[4], strings.Split(m[5], ";")
	secret, ok := c.opts.Credentials[keyID]
	if !ok {
		return keyID, &authError{"InvalidClientTokenId", "The security token included in the request is invalid.", http.StatusForbidden}
	}
	if svc != service || region != c.opts.Region {
		return keyID, &authError{"SignatureDoesNotMatch", "Credential should be scoped to a valid region, not '" + region + "'; and service '" + service + "', not '" + svc + "'.", http.StatusForbidden}
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || at.Format("20060102") != date {
		return keyID, &authError{"IncompleteSignature", "Date must be in ISO-8601 'basic format'.", http.StatusBadRequest}
	}
	if d := time.Since(at); d > 15*time.Minute || d < -15*time.Minute {
		return keyID, &authError{"RequestExpired", "Request has expired.", http.StatusForbidden}
	}
	if !slices.Contains(signed, "host") {
		return keyID, &authError{"SignatureDoesNotMatch", "'Host' must be a signed header.", http.StatusForbidden}
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		switch {
		case !slices.Contains(signed, "x-amz-content-sha256"):
			return keyID, &authError{"SignatureDoesNotMatch", "X-Amz-Content-Sha256 must be signed.", http.StatusForbidden}
		case h == unsignedPayload && allowUnsigned:
			payloadHash = h
		case h != payloadHash:
			return keyID, &authError{"SignatureDoesNotMatch", "The provided 'x-amz-content-sha256' header does not match what was computed.", http.StatusForbidden}
		}
	}
	u := "https://" + r.Host + path.Clean("/"+r.URL.EscapedPath())
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	again, err := http.NewRequest(r.Method, u, bytes.NewReader(body))
	if err != nil {
		return keyID, &authError{"IncompleteSignature", err.Error(), http.StatusBadRequest}
	}
	again.ContentLength = 0
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, payloadHash, svc, region, at); err != nil {
		return keyID, &authError{"InternalFailure", err.Error(), http.StatusInternalServerError}
	}
	if again.Header.Get("Authorization") != r.Header.Get("Authorization") {
		return keyID, &authError{"SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.", http.StatusForbidden}
	}
	return keyID, nil
}
