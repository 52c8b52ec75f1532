// Copyright 2026 The Portico Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package proxy

// peekReadable has no non-consuming peek here: report readable, so the
// read that follows blocks in the buffered reader as usual.
func peekReadable(uintptr) (bool, error) { return true, nil }
