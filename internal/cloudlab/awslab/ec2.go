package awslab

// EC2's Query API (version 2016-11-15), as documented at
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/ and as service/ec2 v1.349.0 sends it: a
// form POST to / with Action and Version, lists as Name.N (Filter.N.Name, Filter.N.Value.M,
// TagSpecification.N.Tag.M.Key), answered by an <ActionResponse> document in the
// http://ec2.amazonaws.com/doc/2016-11-15/ namespace whose lists are <item> elements, or by
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response> with the
// error's HTTP status. Filter values take EC2's * and ? wildcards. DryRun=true answers
// DryRunOperation (412), as for a caller with every permission.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EC2Namespace is the XML namespace of EC2's answers.
const EC2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// ec2Error is an EC2 error answer.
type ec2Error struct {
	status    int
	code, msg string
}

func (e *ec2Error) Error() string { return e.code + ": " + e.msg }

func badParam(format string, args ...any) *ec2Error {
	return &ec2Error{http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf(format, args...)}
}

func missing(name string) *ec2Error {
	return &ec2Error{http.StatusBadRequest, "MissingParameter", "The request must contain the parameter " + name}
}

type ec2Handler func(c *Cloud, f url.Values) (any, *ec2Error)

var ec2Actions = map[string]ec2Handler{
	"RegisterImage":       (*Cloud).registerImage,
	"DescribeImages":      (*Cloud).describeImages,
	"DeregisterImage":     (*Cloud).deregisterImage,
	"DescribeSnapshots":   (*Cloud).describeSnapshots,
	"DeleteSnapshot":      (*Cloud).deleteSnapshot,
	"CreateTags":          (*Cloud).createTags,
	"DeleteTags":          (*Cloud).deleteTags,
	"RunInstances":        (*Cloud).runInstances,
	"DescribeInstances":   (*Cloud).describeInstances,
	"TerminateInstances":  (*Cloud).terminateInstances,
	"StopInstances":       (*Cloud).stopInstances,
	"StartInstances":      (*Cloud).startInstances,
	"GetConsoleOutput":    (*Cloud).getConsoleOutput,
	"AllocateAddress":     (*Cloud).allocateAddress,
	"DescribeAddresses":   (*Cloud).describeAddresses,
	"AssociateAddress":    (*Cloud).associateAddress,
	"DisassociateAddress": (*Cloud).disassociateAddress,
	"ReleaseAddress":      (*Cloud).releaseAddress,
	"CreateVolume":        (*Cloud).createVolume,
	"DescribeVolumes":     (*Cloud).describeVolumes,
	"AttachVolume":        (*Cloud).attachVolume,
	"DetachVolume":        (*Cloud).detachVolume,
	"DeleteVolume":        (*Cloud).deleteVolume,
	"CreateSnapshot":      (*Cloud).createSnapshot,
	"DescribeSubnets":     (*Cloud).describeSubnets,

	"DescribeInstanceAttribute": (*Cloud).describeInstanceAttribute,
	"ModifyInstanceAttribute":   (*Cloud).modifyInstanceAttribute,
}

func (c *Cloud) serveEC2(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	entry := Request{Time: time.Now(), Service: "ec2"}
	fail := func(e *ec2Error) {
		entry.Status, entry.Code = e.status, e.code
		c.record(entry)
		writeEC2Error(w, e)
	}
	form, perr := url.ParseQuery(string(body))
	if err != nil || perr != nil || r.Method != http.MethodPost || r.URL.Path != "/" {
		fail(&ec2Error{http.StatusBadRequest, "MalformedQueryString", "want a form POST to /"})
		return
	}
	entry.Action, entry.Path, entry.Params = form.Get("Action"), r.URL.Path, form
	keyID, aerr := c.verify(r, body, "ec2", false)
	entry.KeyID, entry.Verified = keyID, aerr == nil
	if aerr != nil {
		code, status := aerr.code, aerr.status
		if code == "InvalidClientTokenId" {
			code, status = "AuthFailure", http.StatusUnauthorized
			aerr.msg = "AWS was not able to validate the provided access credentials"
		}
		fail(&ec2Error{status, code, aerr.msg})
		return
	}
	h := ec2Actions[entry.Action]
	switch {
	case form.Get("Version") != "2016-11-15":
		fail(&ec2Error{http.StatusBadRequest, "InvalidAction", "The action " + entry.Action + " is not valid for version " + form.Get("Version") + "."})
		return
	case h == nil:
		fail(&ec2Error{http.StatusBadRequest, "InvalidAction", "The action " + entry.Action + " is not valid for this web service."})
		return
	case form.Get("DryRun") == "true":
		fail(&ec2Error{http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."})
		return
	}
	c.mu.Lock()
	f, faulted := c.nextFault("ec2", entry.Action)
	c.mu.Unlock()
	if faulted {
		fail(&ec2Error{f.Status, f.Code, f.Message})
		return
	}
	out, e := h(c, form)
	if e != nil {
		fail(e)
		return
	}
	entry.Status = http.StatusOK
	c.record(entry)
	inner, err := innerXML(out)
	if err != nil {
		c.t.Errorf("awslab: encoding the %s answer: %v", entry.Action, err)
		writeEC2Error(w, &ec2Error{http.StatusInternalServerError, "InternalError", err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%sResponse xmlns=\"%s\">\n    <requestId>%s</requestId>\n%s</%sResponse>",
		entry.Action, EC2Namespace, requestID(), inner, entry.Action)
}

// innerXML is the elements of v, a struct, without v's own element.
func innerXML(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if err := enc.EncodeElement(v, xml.StartElement{Name: xml.Name{Local: "x"}}); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	b = bytes.TrimPrefix(b, []byte("<x>"))
	b = bytes.TrimSuffix(b, []byte("</x>"))
	if bytes.Equal(b, []byte("<x/>")) {
		return nil, nil
	}
	return b, nil
}

func requestID() string {
	id := newID("r")[2:]
	return id[:8] + "-" + id[8:12] + "-4" + id[12:15] + "-8" + id[15:17] + "0-" + "000000000000"
}

func writeEC2Error(w http.ResponseWriter, e *ec2Error) {
	var msg strings.Builder
	_ = xml.EscapeText(&msg, []byte(e.msg))
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>",
		e.code, msg.String(), requestID())
}

// returnTrue is the answer of actions that answer <return>true</return>.
type returnTrue struct {
	Return bool `xml:"return"`
}

// members is the list parameter prefix.1, prefix.2, ... in order.
func members(f url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		k := prefix + "." + strconv.Itoa(i)
		if _, ok := f[k]; !ok {
			return out
		}
		out = append(out, f.Get(k))
	}
}

// count is how many prefix.N.* structures the list parameter has.
func count(f url.Values, prefix string) int {
	n := 0
	for k := range f {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(num); err == nil && i > n {
			n = i
		}
	}
	return n
}

// tagsOf is the tag list prefix.N.Key / prefix.N.Value.
func tagsOf(f url.Values, prefix string) (map[string]string, *ec2Error) {
	out := map[string]string{}
	for i := 1; i <= count(f, prefix); i++ {
		p := prefix + "." + strconv.Itoa(i)
		k := f.Get(p + ".Key")
		switch {
		case k == "":
			return nil, badParam("Tag key must not be empty (%s.Key)", p)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return nil, badParam("Tag keys starting with 'aws:' are reserved for internal use")
		case len(k) > 128 || len(f.Get(p+".Value")) > 256:
			return nil, badParam("Tag %q is too long", k)
		}
		out[k] = f.Get(p + ".Value")
	}
	if len(out) > 50 {
		return nil, &ec2Error{http.StatusBadRequest, "TagLimitExceeded", "The maximum number of Tags for a resource has been reached."}
	}
	return out, nil
}

// tagSpecs is TagSpecification.N: the tags for each resource type.
func tagSpecs(f url.Values, allowed ...string) (map[string]map[string]string, *ec2Error) {
	out := map[string]map[string]string{}
	for i := 1; i <= count(f, "TagSpecification"); i++ {
		p := "TagSpecification." + strconv.Itoa(i)
		rt := f.Get(p + ".ResourceType")
		if !slices.Contains(allowed, rt) {
			return nil, badParam("'%s' is not a valid taggable resource type for this operation.", rt)
		}
		tags, e := tagsOf(f, p+".Tag")
		if e != nil {
			return nil, e
		}
		out[rt] = tags
	}
	return out, nil
}

type tagItem struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagItems(tags map[string]string) []tagItem {
	var out []tagItem
	for _, k := range sortedKeys(tags) {
		out = append(out, tagItem{k, tags[k]})
	}
	return out
}

// filter is one Filter.N of a Describe call.
type filter struct {
	name   string
	values []*regexp.Regexp
}

// filtersOf reads Filter.N, refusing the names the action does not take.
func filtersOf(f url.Values, names ...string) ([]filter, *ec2Error) {
	var out []filter
	for i := 1; i <= count(f, "Filter"); i++ {
		p := "Filter." + strconv.Itoa(i)
		name := f.Get(p + ".Name")
		if !slices.Contains(names, name) && !strings.HasPrefix(name, "tag:") {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidParameterValue", "The filter '" + name + "' is invalid"}
		}
		fl := filter{name: name}
		for _, v := range members(f, p+".Value") {
			fl.values = append(fl.values, glob(v))
		}
		if len(fl.values) == 0 {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidParameterValue", "The filter '" + name + "' has no values"}
		}
		out = append(out, fl)
	}
	return out, nil
}

// glob is an EC2 filter value: * is any string, ? any one character.
func glob(v string) *regexp.Regexp {
	q := regexp.QuoteMeta(v)
	q = strings.ReplaceAll(q, `\*`, ".*")
	q = strings.ReplaceAll(q, `\?`, ".")
	return regexp.MustCompile("^" + q + "$")
}

// matches reports whether a resource passes every filter; attr gives the resource's values of a
// filter name (tags are handled here).
func matches(filters []filter, tags map[string]string, attr func(name string) []string) bool {
	for _, fl := range filters {
		var have []string
		switch {
		case strings.HasPrefix(fl.name, "tag:"):
			if v, ok := tags[strings.TrimPrefix(fl.name, "tag:")]; ok {
				have = []string{v}
			}
		case fl.name == "tag-key":
			have = sortedKeys(tags)
		case fl.name == "tag-value":
			for _, k := range sortedKeys(tags) {
				have = append(have, tags[k])
			}
		default:
			have = attr(fl.name)
		}
		if !slices.ContainsFunc(have, func(h string) bool {
			return slices.ContainsFunc(fl.values, func(re *regexp.Regexp) bool { return re.MatchString(h) })
		}) {
			return false
		}
	}
	return true
}

// page cuts a listing to MaxResults (within lo..hi) from NextToken; ids may not be combined with
// MaxResults, as EC2 says.
func page[T any](f url.Values, items []T, lo, hi int, ids []string) ([]T, string, *ec2Error) {
	start := 0
	if tok := f.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "awslab-"))
		if err != nil || n < 0 || n > len(items) {
			return nil, "", &ec2Error{http.StatusBadRequest, "InvalidNextToken", "The token '" + tok + "' is invalid."}
		}
		start = n
	}
	v := f.Get("MaxResults")
	if v == "" {
		return items[start:], "", nil
	}
	if len(ids) > 0 {
		return nil, "", &ec2Error{http.StatusBadRequest, "InvalidParameterCombination", "The parameter ids cannot be used with the parameter maxResults"}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return nil, "", badParam("Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.", v, lo, hi)
	}
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = "awslab-" + strconv.Itoa(end)
	}
	return items[start:end], next, nil
}

// sortedKeys is m's keys in order.
func sortedKeys[K interface{ ~string | ~int32 }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func cloneTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func ec2Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// clientToken is a request's ClientToken and the rest of its parameters, encoded: EC2 answers a
// token used again with the same parameters with the first call's result, and with other
// parameters with tokenReused.
func clientToken(f url.Values) (token, request string) {
	params := url.Values{}
	for k, v := range f {
		if k != "ClientToken" {
			params[k] = v
		}
	}
	return f.Get("ClientToken"), params.Encode()
}

func tokenReused(token string) *ec2Error {
	return &ec2Error{http.StatusBadRequest, "IdempotentParameterMismatch", "The client token '" + token + "' was used before with other parameters."}
}
