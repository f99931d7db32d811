//go:build !linux

package main

import "errors"

var errNotLinux = errors.New("drover-boot keeps secrets on a Linux tmpfs: use -no-mount elsewhere")

func isTmpfs(string) (bool, error) { return false, errNotLinux }

func mountTmpfs(string) error { return errNotLinux }
