package fleet

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Bounds on what a fleet file may make drover read or compute. They are far above any real fleet
// and far below what would exhaust the machine: a hostile or mistaken file gets a diagnostic, never
// a crash or a hang.
const (
	// MaxFleetFileSize bounds the fleet file itself.
	MaxFleetFileSize = 4 << 20
	// MaxReadFileSize bounds what file() returns: its content lands in a string baked into an image.
	MaxReadFileSize = 16 << 20
	// MaxNesting bounds how deeply brackets, templates, unary operators and conditionals nest: the
	// HCL parser and evaluator recurse once per level.
	MaxNesting = 128
	// maxNumberLiteral bounds a number literal's length, and maxBinaryExponent its magnitude
	// (about 10^±300, a float64's range): turning a number of 10^1000000000 into text takes forever.
	maxNumberLiteral  = 256
	maxBinaryExponent = 1024
	// maxProducts bounds the multiplications and divisions of one attribute.
	maxProducts = 32
	// maxSuggest bounds the strings didYouMean compares: the edit distance is quadratic.
	maxSuggest = 128
)

// errNotRegular says a path names something other than a regular file: reading a FIFO blocks until
// a writer comes, a device such as /dev/zero never ends, and neither can be baked into an image.
var errNotRegular = errors.New("not a regular file")

// readRegularFile reads a regular file of at most limit bytes. It opens without blocking (a FIFO
// would otherwise block the open itself until a writer appears), checks the opened file's type, and
// never reads more than limit+1 bytes.
func readRegularFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, %w", path, describeFileType(fi.Mode()), errNotRegular)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB, the most drover reads", path, limit>>20)
	}
	return b, nil
}

// describeFileType names a file's type for a message about a path that is not a regular file.
func describeFileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}

// describeNumber formats a number for a message without ever formatting a huge one: the exact text
// of 1e999999999 has a billion digits.
func describeNumber(bf *big.Float) string {
	if bf == nil {
		return "null"
	}
	if bf.IsInf() {
		return bf.String()
	}
	if exp := bf.MantExp(nil); exp > 64 || exp < -64 {
		return fmt.Sprintf("a number of about 2^%d", exp)
	}
	return bf.Text('g', -1)
}

// checkShape scans a fleet file's tokens before it is parsed: brackets, templates, unary operators
// and conditionals nested deeper than MaxNesting and number literals too long or too large are
// diagnostics, since the parser would recurse past its stack or the number take forever to print.
// Scanning tokens is iterative, so it is safe on any input.
func checkShape(src []byte, filename string) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth, unary, ternary, products := 0, 0, 0, 0
	var diags hcl.Diagnostics
	tooDeep := func(tok hclsyntax.Token) hcl.Diagnostics {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Nesting too deep",
			Detail:  fmt.Sprintf("Expressions and blocks nest at most %d levels deep; this one nests deeper. Split it up, or name parts of it with variables.", MaxNesting),
			Subject: tok.Range.Ptr()})
	}
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenTemplateInterp,
			hclsyntax.TokenTemplateControl, hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc:
			depth++
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenTemplateSeqEnd,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			if depth > 0 {
				depth--
			}
		case hclsyntax.TokenNewline:
			if depth == 0 {
				ternary, products = 0, 0
			}
		case hclsyntax.TokenStar, hclsyntax.TokenSlash:
			// Each product can square a number's size: 1e300 multiplied a thousand times has
			// 300000 digits, which turning into text (a string attribute) takes minutes.
			if products++; products == maxProducts+1 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Expression too long",
					Detail:  fmt.Sprintf("An attribute multiplies or divides at most %d times.", maxProducts),
					Subject: tok.Range.Ptr()})
			}
		}
		switch tok.Type {
		case hclsyntax.TokenMinus, hclsyntax.TokenBang:
			unary++
		case hclsyntax.TokenQuestion:
			ternary++
			unary = 0
		default:
			unary = 0
		}
		if depth+unary+ternary > MaxNesting {
			return tooDeep(tok)
		}
		if tok.Type == hclsyntax.TokenNumberLit && !numberLiteralFits(string(tok.Bytes)) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Number too large",
				Detail:  "Numbers in a fleet file lie between about -1e300 and 1e300, written in at most 256 characters.",
				Subject: tok.Range.Ptr()})
		}
	}
	return diags
}

// numberLiteralFits reports whether a number literal is short and of a magnitude drover handles.
func numberLiteralFits(lit string) bool {
	if len(lit) > maxNumberLiteral {
		return false
	}
	bf, _, err := big.ParseFloat(strings.ToLower(lit), 10, 512, big.ToNearestEven)
	if bf != nil && bf.IsInf() {
		return false // beyond big.Float's exponent range
	}
	if err != nil {
		return true // the parser reports malformed literals itself
	}
	exp := bf.MantExp(nil)
	return bf.Sign() == 0 || (exp < maxBinaryExponent && exp > -maxBinaryExponent)
}

// pointAtOpenings moves the parser's "unterminated" diagnostic of a heredoc that is never closed
// from the end of the file, where the parser gave up, to the <<MARKER that opens it.
func pointAtOpenings(src []byte, filename string, diags hcl.Diagnostics) hcl.Diagnostics {
	var open *hclsyntax.Token
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	for i := range tokens {
		switch tokens[i].Type {
		case hclsyntax.TokenOHeredoc:
			if open == nil {
				open = &tokens[i]
			}
		case hclsyntax.TokenCHeredoc:
			open = nil
		}
	}
	if open == nil {
		return diags
	}
	marker := strings.TrimSpace(strings.TrimLeft(string(open.Bytes), "<-"))
	for _, d := range diags {
		if d.Summary == "Unterminated template string" || d.Summary == "Unclosed heredoc" {
			d.Summary = "Unclosed heredoc"
			d.Detail = fmt.Sprintf("The heredoc opened here is never closed: end it with a line that holds only %s.", marker)
			d.Subject = open.Range.Ptr()
		}
	}
	return diags
}

// hugeNumberInside reports whether a value is or holds a number beyond maxBinaryExponent: a
// variable computed from others (var.b = var.a * var.a, and so on) could otherwise double a
// number's size at each step.
func hugeNumberInside(v cty.Value) bool {
	if v.IsNull() || !v.IsKnown() {
		return false
	}
	ty := v.Type()
	switch {
	case ty == cty.Number:
		bf := v.AsBigFloat()
		exp := bf.MantExp(nil)
		return bf.IsInf() || (bf.Sign() != 0 && (exp > maxBinaryExponent || exp < -maxBinaryExponent))
	case ty.IsListType() || ty.IsSetType() || ty.IsMapType() || ty.IsTupleType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			if _, e := it.Element(); hugeNumberInside(e) {
				return true
			}
		}
	}
	return false
}
