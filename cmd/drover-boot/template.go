package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"

	"github.com/drover-dev/drover/plugins/secrets"
)

// maxTemplate bounds a secret template: it is a small config file, and it is read before the
// single-use token is spent.
const maxTemplate = 64 << 10

// loadTemplate reads and parses the template of a secret file from the image (under root), before
// anything is fetched: a missing or broken template fails the boot without spending the token.
func loadTemplate(root, name, inImage string) (*template.Template, error) {
	p := filepath.Join(root, filepath.FromSlash(inImage))
	b, err := readTemplateFile(p)
	if err != nil {
		return nil, fmt.Errorf("secret %s: its template: %w", name, err)
	}
	if len(b) > maxTemplate {
		return nil, fmt.Errorf("secret %s: its template %s is %d bytes, more than %d", name, inImage, len(b), maxTemplate)
	}
	t, err := template.New(inImage).Option("missingkey=error").Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("secret %s: its template: %w", name, err)
	}
	return t, nil
}

// renderTemplate executes a secret file's template with the path's fields as its data, each field
// as a file holds it ({{ .password }}). A field the template names that the secret lacks is an
// error naming the field and the fields there are, never a value.
func renderTemplate(t *template.Template, fields map[string]secrets.Secret, path string) (secrets.Secret, []secrets.Secret, error) {
	data := make(map[string]string, len(fields))
	var vals []secrets.Secret
	for k, raw := range fields {
		v := fieldValue(raw)
		data[k] = v.Reveal()
		vals = append(vals, v, raw)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		// text/template's execution errors name the template, position and key, and a missing key
		// is the only kind a data map of strings can cause; no value is in them.
		return "", nil, fmt.Errorf("secret %s: rendering %s (its fields: %s): %w", path, t.Name(), strings.Join(sortedKeys(fields), ", "), err)
	}
	clear(data)
	return secrets.Secret(buf.String()), vals, nil
}

// readTemplateFile reads at most maxTemplate+1 bytes of a regular file: user-data naming a device
// (/dev/zero) or a FIFO as a template must fail the boot, not fill memory or block it. The open does
// not block on a FIFO; the type is checked on what was opened.
func readTemplateFile(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", p, fi.Mode().Type())
	}
	return io.ReadAll(io.LimitReader(f, maxTemplate+1))
}
