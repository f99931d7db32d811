package tree

import (
	"context"
	"fmt"
	"io"
)

// Run runs each command with /bin/sh -c inside the tree at root, in order,
// stopping at the first failure. Commands see /proc, /sys, /dev and /run
// mounted, "localhost" as the host name, and a policy-rc.d that keeps
// services from starting; all of it is gone afterwards, also when a
// command fails or ctx is cancelled. The environment is fixed (PATH, HOME,
// LANG=C.UTF-8, DEBIAN_FRONTEND=noninteractive, plus the host's proxy
// variables and SOURCE_DATE_EPOCH), not the build host's. A base tree has
// no apt lists: a command that installs packages runs apt-get update first.
// Output goes to log as it comes; a failure's StepError carries the exit
// code and the last 20 lines.
func Run(ctx context.Context, root string, commands []string, log io.Writer) (err error) {
	s, err := openChroot(root)
	if err != nil {
		return stepErr("run", err)
	}
	defer func() {
		if cerr := s.close(); cerr != nil && err == nil {
			err = stepErr("run", fmt.Errorf("clean up after commands: %w", cerr))
		}
	}()
	for i, c := range commands {
		if err := ctx.Err(); err != nil {
			return stepErr("run", err)
		}
		if log != nil {
			fmt.Fprintf(log, "+ %s\n", c)
		}
		f := run(ctx, command{
			args:    s.argv("chroot", s.root, "/bin/sh", "-c", c),
			env:     chrootEnv(),
			log:     log,
			isolate: true,
		})
		if f != nil {
			return f.asStepError("run", fmt.Sprintf("command %d of %d (%s)", i+1, len(commands), quoteShort(c)))
		}
	}
	return nil
}
