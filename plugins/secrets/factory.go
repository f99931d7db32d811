package secrets

import (
	"context"
	"fmt"

	"github.com/drover-dev/drover/plugins/config"
)

// Factory makes brokers of one type (the fleet's vault block); plugins/all lists one per type.
type Factory = config.Factory[Broker]

// Endpoint is implemented by the configs of brokers that instances log in to themselves (Vault):
// what the controller tells an instance about where and how to log in.
type Endpoint interface {
	// ServerAddress is the broker's URL as drover reaches it; an instance may reach it by another
	// address (AddressForInstances, or compute.HostRouter says which).
	ServerAddress() string
	// AddressForInstances is the broker's URL as instances reach it when the block names one (a
	// private name in the cloud's network); "" means ServerAddress.
	AddressForInstances() string
	// IAMServerID is what an instance that logs in with its cloud identity sends so that its signed
	// request is good for this broker only; "" when none is configured.
	IAMServerID() string
}

// Rekeyer is implemented by the configs of brokers that act with a token: the image scan reads a
// role's values with a token of its own (one that may read them), not the controller's.
type Rekeyer interface {
	// HasToken reports whether the config holds a token at all.
	HasToken() bool
	// WithToken returns a copy of the config (address, TLS, mounts) with tok, to open with the
	// same factory.
	WithToken(tok Secret) any
}

// CILogin is implemented by the configs of brokers that can log the controller in with a CI job's
// OIDC token instead of a stored token (drover ci init writes the pipeline step that provides it).
type CILogin interface {
	// CITokenEnv is the variable the broker reads the job's token from, "" when the block does not
	// log in that way.
	CITokenEnv() string
}

// PathReader is implemented by brokers that read the values of any paths their token may read.
type PathReader interface {
	ReadValues(ctx context.Context, paths []string) ([]Secret, error)
}

// ControllerPolicy is implemented by the configs of brokers that can say what the controller's own
// token needs (drover vault policy), which takes no token to say.
type ControllerPolicy interface {
	// ControllerPolicy returns the policy's suggested name and its text; withCloudLogin adds what
	// roles that log in with their cloud identity need.
	ControllerPolicy(withCloudLogin bool) (name, policy string)
}

// DeniedError is a read the broker's token may not make (by design, for the controller's token).
type DeniedError struct {
	Path string
	// Err is the platform's answer; errors.As finds the client's own error type in it.
	Err error
	// Why explains, for the message, why the token may not ("a token with only the
	// drover-controller policy may not, by design").
	Why string
}

func (e *DeniedError) Error() string {
	msg := "the token may not read the secrets at " + e.Path
	if e.Why != "" {
		msg += " (" + e.Why + ")"
	}
	return fmt.Sprintf("%s: %v", msg, e.Err)
}

func (e *DeniedError) Unwrap() error { return e.Err }
