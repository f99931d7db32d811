// Package config holds what every provider's Config shares: reading secrets from namespaced environment
// variables (NAME or NAME_FILE, never from the fleet file) and errors that name the attribute at fault.
package config

import (
	"fmt"
	"os"
	"strings"
)

// LookupEnv is how configs read the environment; tests pass their own.
type LookupEnv func(string) (string, bool)

// OS reads the process environment.
func OS() LookupEnv { return os.LookupEnv }

// Secret reads NAME, or the file named by NAME_FILE (trailing newline trimmed), the way lego and Docker
// secrets do. It returns "" when neither is set; an unreadable NAME_FILE is an error naming the file.
func Secret(lookup LookupEnv, name string) (string, error) {
	if v, ok := lookup(name); ok && v != "" {
		return v, nil
	}
	path, ok := lookup(name + "_FILE")
	if !ok || path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: reading %s_FILE=%s: %w", name, path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// String returns NAME's value, or def when it is unset or empty.
func String(lookup LookupEnv, name, def string) string {
	if v, ok := lookup(name); ok && v != "" {
		return v
	}
	return def
}

// AttrError is a Validate error about one attribute of a provider block; the fleet decoder uses the
// attribute name to point its diagnostic at the right line.
type AttrError struct {
	Attr string
	Msg  string
}

// Errorf makes an AttrError.
func Errorf(attr, format string, args ...any) *AttrError {
	return &AttrError{Attr: attr, Msg: fmt.Sprintf(format, args...)}
}

func (e *AttrError) Error() string { return fmt.Sprintf("%s: %s", e.Attr, e.Msg) }

// Attribute names the attribute at fault.
func (e *AttrError) Attribute() string { return e.Attr }
