package faults

import "testing"

func TestQueue(t *testing.T) {
	var q Queue[string]
	if f, ok := q.Next("GET", "/a"); ok {
		t.Fatalf("empty queue: Next = %q, true", f)
	}
	q.Add("post-batch", Match{Times: 2, Method: "POST", Path: "/batch"})
	q.Add("any-once", Match{Times: 1})
	q.Add("always", Match{Times: -1, Path: "/rrset"})
	for i, tc := range []struct {
		method, path, want string
	}{
		{"GET", "/x/batch", "any-once"}, // not a POST: the next fault that matches
		{"POST", "/x/batch", "post-batch"},
		{"GET", "/x", ""}, // any-once is used up
		{"POST", "/x/batch", "post-batch"},
		{"POST", "/x/batch", ""}, // post-batch is used up
		{"POST", "/zone/rrset", "always"},
		{"GET", "/zone/rrset", "always"},
		{"GET", "/zone/rrset", "always"},
	} {
		got, ok := q.Next(tc.method, tc.path)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("request %d, %s %s: Next = %q, %t, want %q", i, tc.method, tc.path, got, ok, tc.want)
		}
	}
	var zero Queue[int]
	zero.Add(7, Match{}) // Times 0: every request, like -1
	for range 3 {
		if f, ok := zero.Next("GET", "/"); !ok || f != 7 {
			t.Fatalf("Times 0: Next = %d, %t, want 7, true", f, ok)
		}
	}
}
