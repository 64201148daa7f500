package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs one dgw command line in-process and returns what it printed
// and its exit code.
func runCLI(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	a := &app{stdin: stdin, stdout: &out, stderr: &errb, environ: []string{}}
	code = a.run(t.Context(), args)
	return out.String(), errb.String(), code
}

// genEvents returns the JSON lines of `dgw gen`.
func genEvents(t *testing.T, count int, seed string) []string {
	t.Helper()
	out, stderr, code := runCLI(t, nil, "gen", "--count", strconv.Itoa(count), "--seed", seed)
	require.Equal(t, 0, code, stderr)
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.Len(t, lines, count)
	return lines
}

func firstOfType(t *testing.T, lines []string, typ string, pred func(v map[string]any) bool) string {
	t.Helper()
	for _, l := range lines {
		var e struct {
			Type  string         `json:"type"`
			Value map[string]any `json:"value"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		if e.Type == typ && (pred == nil || pred(e.Value)) {
			return l
		}
	}
	t.Fatalf("no %s event in the generated stream", typ)
	return ""
}

func TestGenIsDeterministic(t *testing.T) {
	a := genEvents(t, 50, "7")
	b := genEvents(t, 50, "7")
	c := genEvents(t, 50, "8")
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, c)
}

// TestEvalBorderAPI: the arrival country's immigration recipient gets the
// travel-document (API) data of a check-in and nothing about payment,
// contact, health or meals.
func TestEvalBorderAPI(t *testing.T) {
	lines := genEvents(t, 400, "3")
	line := firstOfType(t, lines, "checkin", func(v map[string]any) bool {
		f := v["flight"].(map[string]any)
		return f["arrival_country"] == "KZ" && f["departure_country"] != "KZ"
	})
	file := filepath.Join(t.TempDir(), "checkin.json")
	require.NoError(t, os.WriteFile(file, []byte(line), 0o600))
	out, stderr, code := runCLI(t, nil, "eval", "--recipient", "kz-border-api", "--event", file)
	require.Equal(t, 0, code, stderr)

	var res struct {
		Decision struct {
			Allow    bool              `json:"allow"`
			Fields   map[string]string `json:"fields"`
			Basis    string            `json:"basis"`
			Revision string            `json:"revision"`
			Transfer struct {
				Mechanism string `json:"mechanism"`
			} `json:"transfer"`
		} `json:"decision"`
		Record map[string]any `json:"record"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.True(t, res.Decision.Allow, out)
	assert.NotEmpty(t, res.Decision.Basis)
	assert.NotEmpty(t, res.Decision.Revision)
	require.NotNil(t, res.Record)

	var in struct {
		Value map[string]any `json:"value"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &in))
	doc := res.Record["document"].(map[string]any)
	assert.Equal(t, in.Value["document"].(map[string]any)["number"], doc["number"], "API carries the document number")
	assert.NotNil(t, doc["issuing_country"])
	assert.NotNil(t, doc["expiry_date"])
	pax := res.Record["passenger"].(map[string]any)
	assert.NotNil(t, pax["family_name"])
	assert.NotNil(t, pax["birth_date"])
	assert.NotNil(t, pax["nationality"])

	// Nothing outside API: no contact, health, meal (checkin carries no
	// payment data at all).
	for path := range res.Decision.Fields {
		assert.False(t, strings.HasPrefix(path, "destination_address") || path == "contact_phone" ||
			path == "meal_code" || path == "ssr_codes", "API recipient released %s", path)
	}
	for _, k := range []string{"contact_phone", "meal_code", "ssr_codes", "destination_address"} {
		assert.Nil(t, res.Record[k], "record field %s must be absent or null", k)
	}
}

func TestEvalBadInput(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no recipient", []string{"eval", "--event", "-"}, "{}", "--recipient"},
		{"unknown recipient", []string{"eval", "--recipient", "nobody", "--event", "-"}, `{"type":"booking","value":{}}`, "nobody"},
		{"not json", []string{"eval", "--recipient", "kz-border-api", "--event", "-"}, "{", "JSON"},
		{"unknown type", []string{"eval", "--recipient", "kz-border-api", "--event", "-"}, `{"type":"nope","value":{"a":1}}`, "nope"},
		{"missing field", []string{"eval", "--recipient", "kz-border-api", "--event", "-", "--type", "checkin"}, `{"event_id":"x"}`, "checkin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, strings.NewReader(tt.stdin), tt.args...)
			assert.Equal(t, 2, code, stderr)
			assert.Contains(t, stderr, tt.want)
		})
	}
}

// TestDevRunsToCompletion runs `dgw dev` as a new user would, on a random
// port, and checks the summary it prints.
func TestDevRunsToCompletion(t *testing.T) {
	out, stderr, code := runCLI(t, nil, "dev", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--events", "400", "--rate", "0", "--json", "--corrupt-every", "100")
	require.Equal(t, 0, code, stderr)
	var s struct {
		Events     int64            `json:"events"`
		DeadLetter map[string]int64 `json:"dead_lettered"`
		Recipients []struct {
			ID        string `json:"id"`
			Delivered int64  `json:"delivered"`
		} `json:"recipients"`
		PolicyRevision string `json:"policy_revision"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
	assert.GreaterOrEqual(t, s.Events, int64(400))
	assert.NotEmpty(t, s.PolicyRevision)
	var dl int64
	for _, n := range s.DeadLetter {
		dl += n
	}
	assert.Equal(t, int64(4), dl, "one corrupt record every 100")
	flowing := 0
	for _, r := range s.Recipients {
		if r.Delivered > 0 {
			flowing++
		}
	}
	assert.GreaterOrEqual(t, flowing, 14, "recipients with deliveries")
	// The recipients abroad receive only with the cross-border consent the
	// synthetic passengers give in subject requests (Law 94-V Art 16): no
	// requests, nothing for them (TestDevWithoutSubjectRequests).
	assert.Regexp(t, `dgw dev: [1-9]\d* synthetic subject requests published to subject\.requests`, stderr)
	assertForeignReceive(t, recipientsDelivered(s.Recipients))
}

// TestPolicyCheckCommand: `dgw policy check` passes the shipped policies
// and says how dgw run would evaluate their decision misses; a broken
// directory fails with file and line.
func TestPolicyCheckCommand(t *testing.T) {
	out, stderr, code := runCLI(t, nil, "policy", "check", "../../policies")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "policy: ok\n")
	assert.Contains(t, out, "decision misses: evaluated from the policy's plan, which decided")

	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../../policies")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package dgw\n\nbroken if {\n"), 0o644))
	out, _, code = runCLI(t, nil, "policy", "check", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "broken.rego:")
	assert.NotContains(t, out, "decision misses")
}
