package tree

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// idEntry is one line of a tree's /etc/passwd or /etc/group.
type idEntry struct {
	name string
	id   int // uid or gid
	gid  int // primary gid (passwd only)
}

// readIDFile parses a passwd- or group-format file of the tree. A missing
// file is an empty database: numeric owners still work.
func readIDFile(root, name string, passwd bool) ([]idEntry, error) {
	host, err := resolveIn(root, name, true)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the tree's %s: %w", name, err)
	}
	defer f.Close()
	var out []idEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < 4 {
			continue
		}
		id, err := strconv.Atoi(fields[2])
		if err != nil {
			continue
		}
		e := idEntry{name: fields[0], id: id}
		if passwd {
			if e.gid, err = strconv.Atoi(fields[3]); err != nil {
				continue
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the tree's %s: %w", name, err)
	}
	return out, nil
}

// resolveOwner turns "user", "user:group", "uid:gid" or "" (root) into
// numeric ids using the tree's /etc/passwd and /etc/group, never the build
// host's: the image's users are not the host's, and a name that happens to
// exist on both usually has different ids. A user without a group gets the
// user's primary group.
func resolveOwner(root, owner string) (uid, gid int, err error) {
	if owner == "" {
		return 0, 0, nil
	}
	userPart, groupPart, hasGroup := strings.Cut(owner, ":")
	if userPart == "" || (hasGroup && groupPart == "") {
		return 0, 0, fmt.Errorf("invalid owner %q (want user, user:group or uid:gid)", owner)
	}
	users, err := readIDFile(root, "/etc/passwd", true)
	if err != nil {
		return 0, 0, err
	}
	primary := -1
	if n, nerr := strconv.Atoi(userPart); nerr == nil {
		if n < 0 {
			return 0, 0, fmt.Errorf("invalid owner %q: negative uid", owner)
		}
		uid = n
		for _, u := range users {
			if u.id == n {
				primary = u.gid
				break
			}
		}
	} else {
		uid = -1
		for _, u := range users {
			if u.name == userPart {
				uid, primary = u.id, u.gid
				break
			}
		}
		if uid < 0 {
			return 0, 0, fmt.Errorf("owner %q: no user %q in the tree's /etc/passwd", owner, userPart)
		}
	}
	if !hasGroup {
		if primary < 0 {
			return 0, 0, fmt.Errorf("owner %q: uid %d has no entry in the tree's /etc/passwd, so give its group too (uid:gid)", owner, uid)
		}
		return uid, primary, nil
	}
	if n, nerr := strconv.Atoi(groupPart); nerr == nil {
		if n < 0 {
			return 0, 0, fmt.Errorf("invalid owner %q: negative gid", owner)
		}
		return uid, n, nil
	}
	groups, err := readIDFile(root, "/etc/group", false)
	if err != nil {
		return 0, 0, err
	}
	for _, g := range groups {
		if g.name == groupPart {
			return uid, g.id, nil
		}
	}
	return 0, 0, fmt.Errorf("owner %q: no group %q in the tree's /etc/group", owner, groupPart)
}
