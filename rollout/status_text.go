package rollout

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText renders the status for people: the role's rollouts, where its cutover points, who holds
// its lock, then a table of its instances. now is the clock "ago" and "in" are counted on. The JSON
// of Status carries the same facts.
func (st *Status) WriteText(w io.Writer, now time.Time) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "role      %s (strategy %s)\n", st.Role, st.Strategy)
	if st.Active == nil {
		fmt.Fprintf(bw, "active    none\n")
	}
	for _, r := range []struct {
		name string
		rec  *Record
	}{{"active", st.Active}, {"live", st.Live}, {"latest", st.Latest}} {
		if r.rec == nil || (r.name == "latest" && sameRecord(r.rec, st.Active, st.Live)) {
			continue // the newest is already shown
		}
		fmt.Fprintf(bw, "%-9s %s\n", r.name, recordLine(r.rec, now))
	}
	if a := st.Active; a != nil && a.State == Promoted && a.Previous != "" {
		if st.BlueDue {
			fmt.Fprintf(bw, "blue      rollout %s: keep_old has passed; the next command destroys it\n", a.Previous)
		} else {
			fmt.Fprintf(bw, "blue      rollout %s kept until %s (in %s) for an instant rollback\n", a.Previous, stamp(a.KeepUntil), human(a.KeepUntil.Sub(now)))
		}
	}
	if op := st.VolumeOp; op != nil {
		fmt.Fprintf(bw, "volumes   %s %s of volume %s interrupted at %q (%s); finish it with: %s\n", op.Kind, op.ID, op.Volume, op.Step, op.State, op.Command())
	}
	if r := newestOf(st.Active, st.Latest); r != nil && r.Progress.AB != nil {
		for _, h := range r.Progress.AB.Hosts {
			fmt.Fprintf(bw, "device    %s: slot %s committed before, slot %s written by %s; last step %s%s\n", h.Host, h.From, h.To, r.ID, orDash(h.Step), abSentText(h))
		}
	}
	fmt.Fprintf(bw, "cutover   %s", st.Cutover.Target)
	switch {
	case st.Cutover.Type == "none":
		fmt.Fprintf(bw, "\n")
	case len(st.Cutover.Current) == 0:
		fmt.Fprintf(bw, ": points at nothing\n")
	default:
		fmt.Fprintf(bw, ": points at %s\n", strings.Join(st.Cutover.Current, ", "))
	}
	switch l := st.Lock; {
	case l == nil:
		fmt.Fprintf(bw, "lock      free\n")
	case l.Expired:
		fmt.Fprintf(bw, "lock      expired: held by %s since %s, lapsed %s ago (the next command takes it over)\n", l.Owner, stamp(l.Acquired), human(now.Sub(l.Expires)))
	default:
		fmt.Fprintf(bw, "lock      held by %s since %s (%s), expires %s unless renewed\n", l.Owner, stamp(l.Acquired), human(now.Sub(l.Acquired)), stamp(l.Expires))
	}
	if len(st.Instances) == 0 {
		fmt.Fprintf(bw, "instances none\n")
		return bw.Flush()
	}
	fmt.Fprintf(bw, "\n")
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tROLLOUT\tSLOT\tSTATE\tADDRESS\tOWNED")
	for _, i := range st.Instances {
		owned := "yes"
		if !i.Owned {
			owned = "no: the next command destroys it (drover gc if its rollout is unknown)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.Rollout, i.Slot, i.State, orDash(i.Address), owned)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// recordLine is a rollout in one line: id, state, image, kind when not a plain rollout, and when it
// last changed.
func recordLine(r *Record, now time.Time) string {
	s := fmt.Sprintf("%s  %-12s  image %s", r.ID, r.State, r.Image.Short)
	if r.Kind != "" && r.Kind != KindRollout {
		s += "  (" + r.Kind + ")"
	}
	if !r.Updated.IsZero() {
		s += fmt.Sprintf("  since %s (%s ago)", stamp(r.Updated), human(now.Sub(r.Updated)))
	}
	return s
}

func sameRecord(r *Record, others ...*Record) bool {
	for _, o := range others {
		if o != nil && o.ID == r.ID {
			return true
		}
	}
	return false
}

func stamp(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newestOf is the first of recs that is not nil.
func newestOf(recs ...*Record) *Record {
	for _, r := range recs {
		if r != nil {
			return r
		}
	}
	return nil
}

// abSentText says what writing a device's slot sent, "" before it was written.
func abSentText(h ABHost) string {
	if h.SlotBytes == 0 {
		return ""
	}
	return fmt.Sprintf(" (sent %s of %s)", bytesText(h.Sent), bytesText(h.SlotBytes))
}
