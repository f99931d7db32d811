package health

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

// ConsoleTailLines is how many lines of an instance's console log a failure carries.
const ConsoleTailLines = 20

// Failure is why a target is not healthy: the check, the last error, and the tail of the instance's
// console log (redacted of anything that looks like a token or password). It is an error, and it is
// stored in the rollout record as it is.
type Failure struct {
	Check       string        `json:"check"`
	Target      string        `json:"target"`
	Endpoint    string        `json:"endpoint"`
	LastError   string        `json:"last_error"`
	Attempts    int           `json:"attempts"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	Reason      string        `json:"reason"`
	ConsoleTail string        `json:"console_tail,omitempty"`
}

func newFailure(c Check, t Target, last string, attempts int, elapsed time.Duration, reason string) *Failure {
	return &Failure{
		Check: c.Name, Target: t.Name, Endpoint: fmt.Sprintf("%s:%d", t.Addr, c.Port), LastError: last,
		Attempts: attempts, Elapsed: elapsed.Round(time.Millisecond), Reason: reason,
		ConsoleTail: ConsoleTail(t.Console, ConsoleTailLines),
	}
}

// NewFailure makes a Failure for a target that cannot be checked at all (an instance that died while
// booting, say), with the tail of its console log.
func NewFailure(check string, t Target, last, reason string) *Failure {
	return &Failure{Check: check, Target: t.Name, LastError: last, Reason: reason,
		ConsoleTail: ConsoleTail(t.Console, ConsoleTailLines)}
}

func (f *Failure) Error() string {
	return fmt.Sprintf("%s failed on %s (%s) after %d attempts: %s: %s", f.Check, f.Target, f.Endpoint, f.Attempts, f.Reason, f.LastError)
}

// Report is the failure for humans on several lines, console tail included.
func (f *Failure) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "check:      %s\ninstance:   %s (%s)\nlast error: %s\nwhy:        %s, %d attempts in %s\n",
		f.Check, f.Target, f.Endpoint, f.LastError, f.Reason, f.Attempts, f.Elapsed)
	if f.ConsoleTail != "" {
		b.WriteString("console (last lines):\n")
		for _, l := range strings.Split(strings.TrimRight(f.ConsoleTail, "\n"), "\n") {
			b.WriteString("  | " + l + "\n")
		}
	}
	return b.String()
}

// secretPatterns match what must never reach a record or a log: Vault tokens and key=value pairs
// whose key says secret.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`\bhv[sbr]\.[A-Za-z0-9_\-\.]+`),
	regexp.MustCompile(`\bs\.[A-Za-z0-9]{24}\b`),
	regexp.MustCompile(`(?i)((?:password|passwd|secret|token|secret_id|api[_-]?key)\s*[=:]\s*)\S+`),
}

// Redact blanks out what looks like a token or a password in s.
func Redact(s string) string {
	for i, re := range secretPatterns {
		if i == len(secretPatterns)-1 {
			s = re.ReplaceAllString(s, "${1}[redacted]")
			continue
		}
		s = re.ReplaceAllString(s, "[redacted]")
	}
	return s
}

// ConsoleTail returns the last n lines of the console log at path, redacted, or "" when there is no
// log. It reads at most the last 64 KiB.
func ConsoleTail(path string, n int) string {
	if path == "" || n <= 0 {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		if _, err := f.Seek(st.Size()-max, io.SeekStart); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return ""
	}
	b = bytes.ReplaceAll(b, []byte("\r"), nil)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return Redact(strings.Join(lines, "\n"))
}
