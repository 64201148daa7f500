// Package schemas holds the Avro schemas of every event dgw reads, with the
// field annotations the gateway relies on (see README.md in this folder).
// Tests and the binary load the same bytes through FS.
package schemas

import "embed"

// FS holds every *.avsc file of this folder.
//
//go:embed *.avsc
var FS embed.FS
