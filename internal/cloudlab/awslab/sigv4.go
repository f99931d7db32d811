package awslab

import (
	"net/http"

	"github.com/drover-dev/drover/internal/cloudlab/sigv4"
)

// authError is why a request's signature was refused, with the error code AWS answers.
type authError struct {
	code, msg string
	status    int
}

// verify checks r's SigV4 signature as AWS does (package sigv4): this region and service, the
// time, and the signature computed again with the secret key of its access key ID. Session tokens
// of temporary credentials are signed along but not checked. allowUnsigned accepts an
// UNSIGNED-PAYLOAD body (EBS's PutSnapshotBlock, whose block x-amz-Checksum covers). It returns
// the access key ID; a nil error means the signature holds.
func (c *Cloud) verify(r *http.Request, body []byte, service string, allowUnsigned bool) (string, *authError) {
	keyID, _, err := sigv4.Verify(r, body, sigv4.Check{Service: service, Region: c.opts.Region, AllowUnsigned: allowUnsigned,
		Keys: func(id string) (sigv4.Key, bool) {
			secret, ok := c.opts.Credentials[id]
			return sigv4.Key{Secret: secret}, ok
		}})
	if err != nil {
		return keyID, &authError{err.Code, err.Message, err.Status}
	}
	return keyID, nil
}
