// Package policies holds dgw's disclosure policy as data for compliance
// staff: the Rego modules (package dgw, query data.dgw.decision), their
// tests (*_test.rego) and the data files (data/*.json: the recipients
// registry and the country lists). See README.md in this folder.
//
// FS has the same layout `opa test policies/` sees, so a data file
// data/x.json is loaded under data.data; gateway/policy loads it the same
// way.
package policies

import "embed"

// FS holds every Rego module, Rego test and data file of this folder.
//
//go:embed *.rego data/*.json
var FS embed.FS
